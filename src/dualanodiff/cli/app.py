"""The Typer application that every command module registers on, and what its commands share: settings built
from a command's parameters, and the one-line refusal of missing options."""

from dataclasses import fields
from pathlib import Path
from typing import Any

import typer

from dualanodiff.errors import UserError

# Parameter names of the commands that are not their settings' field names.
_RENAMED = {"object_": "object", "compile_": "compile", "data": "data_root"}

app = typer.Typer(
    name="dualanodiff",
    help="Generate realistic industrial anomaly images with pixel-exact masks from a few examples "
    "(DualAnoDiff, CVPR 2025).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
evaluate_app = typer.Typer(
    help="Measure generated anomalies: downstream localization, classification, and generation quality.",
    no_args_is_help=True,
)
app.add_typer(evaluate_app, name="evaluate")


def settings_values(params: dict[str, Any], settings_class: type) -> dict[str, Any]:
    """The parameters named like `settings_class`'s fields (None: the field's default), as strings for paths."""
    renamed = {_RENAMED.get(name, name): value for name, value in params.items()}
    names = {field.name for field in fields(settings_class)}
    return {name: str(value) if isinstance(value, Path) else value
            for name, value in renamed.items() if name in names and value is not None}


def require_options(command: str, **options: Any) -> None:
    """Refuse, in one line, the options that were not given (`object_` is --object)."""
    absent = [f"--{name.rstrip('_').replace('_', '-')}" for name, value in options.items() if value is None]
    if absent:
        raise UserError(f"{command}: missing option(s) {', '.join(absent)} (or --config FILE)")
