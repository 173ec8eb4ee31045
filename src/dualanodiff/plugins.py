"""User plug-ins named `module.path:factory`: a mask method, an object segmenter. One loader, one kind of error."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from dualanodiff.errors import UserError, first_line


def load_plugin(spec: str, built_in: Mapping[str, Callable[[], Any]], *, what: str) -> Any:
    """`built_in[spec]()`, or `factory()` of `module.path:factory`; a spec that is neither is one line naming it."""
    if spec in built_in:
        return built_in[spec]()
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise UserError(f"unknown {what} {spec!r}; use {', '.join(built_in)} or module.path:factory")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise UserError(f"{what} {spec!r}: cannot load it ({error})") from None
    if not callable(factory):
        raise UserError(f"{what} {spec!r}: {attribute} is not callable")
    try:
        return factory()
    except Exception as error:  # a plug-in's own failure is the user's to fix, in one line
        raise UserError(f"{what} {spec!r}: {attribute}() failed ({type(error).__name__}: "
                        f"{first_line(error)})") from None
