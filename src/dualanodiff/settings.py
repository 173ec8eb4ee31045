"""Settings as data: the base of every stage's settings dataclass (train, tiny-base pre-training, generate,
evaluate localization).

A field declares its checks once, with `setting(...)`: the smallest and largest value, the choices, whether None is
allowed. `Settings.validate()` applies them (every number must also be finite) and is the one place a bad value
is refused, as one line that names the command-line option (`--steps must be at least 1, got 0`).
`to_dict` / `from_dict` are the JSON form stored in a run's config.json, a GEN's meta.json and a sweep's job
files; `from_dict` checks every value's type and refuses unknown keys, naming the file it was read from.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Sequence
from typing import Any, TypeVar

from dualanodiff.errors import UserError

S = TypeVar("S", bound="Settings")


def setting(default: Any = dataclasses.MISSING, *, minimum: float | None = None, maximum: float | None = None,
            choices: Sequence[Any] | None = None, above: float | None = None, flag: str | None = None,
            default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with its checks: minimum/maximum inclusive, `above` exclusive, `choices` (for strings);
    `flag` is its command-line name when that is not --field-name."""
    metadata = {"minimum": minimum, "maximum": maximum, "choices": tuple(choices) if choices else None,
                "above": above, "flag": flag}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def flag_of(field: dataclasses.Field) -> str:
    return field.metadata.get("flag") or f"--{field.name.replace('_', '-')}"


def _allowed_types(annotation: Any) -> tuple[tuple[type, ...], bool]:
    """The runtime types a field accepts and whether None is one of them."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = typing.get_args(annotation)
        allowed = tuple(t for member in members if member is not type(None)
                        for t in _allowed_types(member)[0])
        return allowed, type(None) in members
    if origin is typing.Literal:
        return tuple({type(value) for value in typing.get_args(annotation)}), False
    if origin in (list, tuple):
        return (list, tuple), False
    if annotation is float:
        return (float, int), False
    return (origin or annotation,), False


@dataclasses.dataclass
class Settings:
    """Base class: JSON round trip, type and range checks. Subclasses are plain dataclasses of `setting` fields."""

    def validate(self: S) -> S:
        """Refuse the first bad value in one line naming its option; returns self."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None or isinstance(value, Settings):
                if isinstance(value, Settings):
                    value.validate()
                continue
            meta, option = field.metadata, flag_of(field)
            if isinstance(value, float) and not math.isfinite(value):
                raise UserError(f"{option} must be a finite number, got {value}")
            if meta.get("choices") and value not in meta["choices"]:
                raise UserError(f"{option} must be one of {', '.join(map(str, meta['choices']))}, got {value!r}")
            if meta.get("minimum") is not None and value < meta["minimum"]:
                raise UserError(f"{option} must be at least {meta['minimum']}, got {value}")
            if meta.get("maximum") is not None and value > meta["maximum"]:
                raise UserError(f"{option} must be at most {meta['maximum']}, got {value}")
            if meta.get("above") is not None and not value > meta["above"]:
                raise UserError(f"{option} must be above {meta['above']}, got {value}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {field.name: (value.to_dict() if isinstance(value, Settings) else value)
                for field in dataclasses.fields(self) for value in [getattr(self, field.name)]}

    @classmethod
    def from_dict(cls: type[S], data: Any, *, where: str = "settings", ignore: Sequence[str] = ()) -> S:
        """Settings from their JSON form; `where` (a file, a key) names the source in errors, `ignore` lists keys
        that may stand beside the settings (a file's format tag)."""
        if not isinstance(data, dict):
            raise UserError(f"{where}: expected a JSON object of {cls.__name__} values, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        known = {field.name: field for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known) - set(ignore))
        if unknown:
            raise UserError(f"{where}: unknown {cls.__name__} key(s) {', '.join(unknown)}")
        values = {}
        for name, value in data.items():
            if name not in known:
                continue
            annotation = hints[name]
            if isinstance(annotation, type) and issubclass(annotation, Settings):
                values[name] = annotation.from_dict(value, where=f"{where}: {name}")
                continue
            allowed, optional = _allowed_types(annotation)
            wrong_bool = isinstance(value, bool) and bool not in allowed
            if not (value is None and optional) and (wrong_bool or not isinstance(value, allowed)):
                raise UserError(f"{where}: {name} must be {_type_text(allowed, optional)}, got {value!r}")
            values[name] = list(value) if isinstance(value, tuple) else value
        missing = [name for name, field in known.items() if name not in values
                   and field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING]
        if missing:
            raise UserError(f"{where}: missing {cls.__name__} key(s) {', '.join(missing)}")
        return cls(**values).validate()


def _type_text(allowed: tuple[type, ...], optional: bool) -> str:
    names = {float: "a number", int: "an integer", bool: "true or false", str: "a string", list: "a list"}
    words = [names.get(t, t.__name__) for t in allowed if t is not tuple]
    words = ["a number"] if "a number" in words else words
    return " or ".join([*dict.fromkeys(words), *(["null"] if optional else [])])
