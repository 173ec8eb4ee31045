"""Custom data-set layouts, described by a JSON file (config as data) instead of code.

A data set that is not in MVTec AD layout is described by a layout file, passed as `--layout FILE` (or
`load_source(root, layout=FILE)`), or found as `ROOT/dualanodiff-layout.json`. Every folder in it is relative
to the data root. Schema (`examples/layouts/mtd.json` is a worked example):

    {
      "format": "dualanodiff-layout/1",  optional; when present it must be exactly this
      "description": "free text",       optional; JSON has no comments, so notes go here
      "objects": {                      one entry per object, keyed by the object's name
        "magnetic_tile": {
          "anomalies": {"blowhole": "MT_Blowhole/Imgs", "crack": "MT_Crack/Imgs"},
                                  anomaly type name -> folder of its images; or a pattern string with one
                                  {anomaly} placeholder in one folder name, such as "MT_{anomaly}/Imgs": every
                                  matching folder is a type named by what the placeholder matched (the normal
                                  folders never count)
          "images": "*.jpg",      which files in a folder are images (a glob on the file name,
                                  case-insensitive); the other files (masks, notes) are ignored
          "masks": "{stem}.png",  where an image's mask is, relative to the image's folder
                                  ("../masks/{stem}_mask.png"), or relative to the data root when it
                                  starts with "{root}/" ("{root}/gt/{anomaly}/{stem}.png"). Placeholders:
                                  {stem} and {name} (the image's file name without and with its suffix),
                                  {anomaly}, {object}
          "normal": "MT_Free/Imgs",
                                  the folder of normal (defect-free) images
          "normal_test": {"last_fraction": 0.2}
                                  optional: which normal images are held out for testing, either
                                  {"folder": "FOLDER"} (a separate folder) or {"last_fraction": F} (the
                                  last floor(F x n) of the n normal images sorted by file name; the others
                                  train, so the two never overlap); default: none
        }
      }
    }

Every mistake is a `DataError` of one line naming the file and the key, such as
`mtd.json: objects.magnetic_tile.masks: unknown placeholder {stm} (allowed: {stem}, {name}, ...)`.
"""

from __future__ import annotations

import json
import os
import string
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from dualanodiff.errors import DataError

LAYOUT_FILE_NAME = "dualanodiff-layout.json"
LAYOUT_FORMAT = "dualanodiff-layout/1"
ROOT_PREFIX = "{root}/"
ANOMALY_PLACEHOLDER = "{anomaly}"
MASK_PLACEHOLDERS = ("stem", "name", "anomaly", "object")

_TOP_KEYS = {"format", "description", "objects"}
_OBJECT_KEYS = {"anomalies", "images", "masks", "normal", "normal_test"}
_REQUIRED_OBJECT_KEYS = ("anomalies", "images", "masks", "normal")


@dataclass(frozen=True)
class ObjectLayout:
    """Where one object's files are. Exactly one of `anomaly_folders` and `anomaly_pattern` is set."""

    name: str
    anomaly_folders: dict[str, str] | None
    anomaly_pattern: str | None
    images: str
    masks: str
    normal: str
    normal_test_folder: str | None = None
    normal_test_fraction: float | None = None


@dataclass(frozen=True)
class Layout:
    path: Path
    objects: dict[str, ObjectLayout]


class _Checker:
    """Builds the one-line errors: `FILE: KEY: problem`."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, key: str, problem: str) -> DataError:
        return DataError(f"{self.path}: {key}: {problem}")

    def text(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, not {json.dumps(value)}")
        return value

    def name(self, value: str, key: str) -> str:
        if not value or "/" in value or "\\" in value or value.startswith("."):
            raise self.fail(key, f"{value!r} is not a usable name (no '/', no leading '.')")
        return value

    def folder(self, value: Any, key: str) -> str:
        folder = self.text(value, key)
        if PurePosixPath(folder).is_absolute() or Path(folder).is_absolute():
            raise self.fail(key, f"{folder!r} must be a folder relative to the data root")
        if os.path.normpath(folder).split(os.sep)[0] == "..":
            raise self.fail(key, f"{folder!r} leads out of the data root (a layout reads only inside it)")
        return folder

    def keys(self, entry: dict[str, Any], allowed: set[str], key: str) -> None:
        unknown = sorted(set(entry) - allowed)
        if unknown:
            raise self.fail(f"{key}{unknown[0]}" if key else unknown[0],
                            f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def mapping(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a JSON object, not {json.dumps(value)}")
        return value


def read_layout(path: str | Path) -> Layout:
    """Read and validate a layout file; see the module docstring for the schema."""
    path = Path(path)
    check = _Checker(path)
    if not path.is_file():
        raise DataError(f"{path}: layout file not found")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: must hold a JSON object with an 'objects' entry")
    check.keys(data, _TOP_KEYS, "")
    if "format" in data and data["format"] != LAYOUT_FORMAT:
        raise check.fail("format", f"{json.dumps(data['format'])} is not {json.dumps(LAYOUT_FORMAT)}")
    if "objects" not in data:
        raise check.fail("objects", "missing (a mapping from object name to its folders)")
    objects = check.mapping(data["objects"], "objects")
    if not objects:
        raise check.fail("objects", "is empty")
    return Layout(path, {check.name(name, f"objects.{name}"): _read_object(check, name, entry)
                         for name, entry in objects.items()})


def _read_object(check: _Checker, name: str, entry: Any) -> ObjectLayout:
    key = f"objects.{name}"
    entry = check.mapping(entry, key)
    check.keys(entry, _OBJECT_KEYS, f"{key}.")
    for required in _REQUIRED_OBJECT_KEYS:
        if required not in entry:
            raise check.fail(f"{key}.{required}", "missing")
    anomalies = entry["anomalies"]
    folders = pattern = None
    if isinstance(anomalies, str):
        pattern = _read_pattern(check, anomalies, f"{key}.anomalies")
    else:
        folders = {check.name(anomaly, f"{key}.anomalies.{anomaly}"):
                   check.folder(folder, f"{key}.anomalies.{anomaly}")
                   for anomaly, folder in check.mapping(anomalies, f"{key}.anomalies").items()}
        if not folders:
            raise check.fail(f"{key}.anomalies", "is empty")
    normal = check.folder(entry["normal"], f"{key}.normal")
    test_folder, test_fraction = _read_normal_test(check, entry.get("normal_test"), f"{key}.normal_test")
    if folders is not None:
        taken = {normal, test_folder}
        for anomaly, folder in folders.items():
            if folder in taken:
                raise check.fail(f"{key}.anomalies.{anomaly}", f"{folder!r} is also a normal-image folder")
    return ObjectLayout(name=name, anomaly_folders=folders, anomaly_pattern=pattern,
                        images=check.text(entry["images"], f"{key}.images"),
                        masks=_read_mask_rule(check, entry["masks"], f"{key}.masks"), normal=normal,
                        normal_test_folder=test_folder, normal_test_fraction=test_fraction)


def _read_pattern(check: _Checker, pattern: str, key: str) -> str:
    check.folder(pattern, key)
    parts = PurePosixPath(pattern).parts
    holders = [part for part in parts if ANOMALY_PLACEHOLDER in part]
    if pattern.count(ANOMALY_PLACEHOLDER) != 1 or len(holders) != 1:
        raise check.fail(key, f"the pattern {pattern!r} must hold {ANOMALY_PLACEHOLDER} exactly once "
                              "(or give a mapping from anomaly type to folder)")
    other = pattern.replace(ANOMALY_PLACEHOLDER, "")
    if "{" in other or "}" in other:
        raise check.fail(key, f"{pattern!r}: the only placeholder allowed is {ANOMALY_PLACEHOLDER}")
    return pattern


def _read_mask_rule(check: _Checker, rule: Any, key: str) -> str:
    rule = check.text(rule, key)
    relative = rule.removeprefix(ROOT_PREFIX)
    if PurePosixPath(relative).is_absolute():
        raise check.fail(key, f"{rule!r} must be relative to the image's folder or start with "
                              f"{ROOT_PREFIX!r}")
    try:
        parsed = [(field, spec, conversion) for _, field, spec, conversion in string.Formatter().parse(relative)
                  if field is not None]
    except ValueError as error:
        raise check.fail(key, f"{rule!r} is not a valid name rule ({error})") from None
    if any(spec or conversion for _, spec, conversion in parsed):
        raise check.fail(key, f"{rule!r}: placeholders take no format spec or conversion ({{stem}}, not {{stem:x}})")
    fields = [field for field, _, _ in parsed]
    allowed = ", ".join(f"{{{name}}}" for name in MASK_PLACEHOLDERS)
    for field in fields:
        if field not in MASK_PLACEHOLDERS:
            raise check.fail(key, f"unknown placeholder {{{field}}} (allowed: {allowed}; "
                                  "{root}/ at the start only)")
    if "stem" not in fields and "name" not in fields:
        raise check.fail(key, f"{rule!r} must contain {{stem}} or {{name}}, or all images would share "
                              "one mask")
    return rule


def _read_normal_test(check: _Checker, value: Any, key: str) -> tuple[str | None, float | None]:
    if value is None:
        return None, None
    entry = check.mapping(value, key)
    check.keys(entry, {"folder", "last_fraction"}, f"{key}.")
    if len(entry) != 1:
        raise check.fail(key, 'needs exactly one of {"folder": FOLDER} or {"last_fraction": F}')
    if "folder" in entry:
        return check.folder(entry["folder"], f"{key}.folder"), None
    fraction = entry["last_fraction"]
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction < 1:
        raise check.fail(f"{key}.last_fraction", f"must be a number between 0 and 1 (exclusive), not "
                                                 f"{json.dumps(fraction)}")
    return None, float(fraction)
