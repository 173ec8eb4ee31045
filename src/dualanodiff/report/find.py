"""Finding what a folder tree holds that the report can show, by the files each folder has."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dualanodiff.evaluate.settings import METRICS_FILE
from dualanodiff.generation.generated_set import FORMAT as GENERATED_FORMAT
from dualanodiff.generation.generated_set import META_FILE
from dualanodiff.io import read_json
from dualanodiff.report.page import FILES_FOLDER
from dualanodiff.report.results import RESULTS_CSV, RESULTS_MD
from dualanodiff.training.run import Run

MAX_DEPTH = 3
EVALUATION_KINDS = ("localization", "classification", "quality")


@dataclass(frozen=True)
class Evaluation:
    """An evaluation folder and its metrics.json."""

    folder: Path
    metrics: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.metrics["kind"]

    @property
    def object(self) -> str:
        return str(self.metrics.get("object", "unknown object"))

    @property
    def method(self) -> str:
        methods = self.metrics.get("methods") or self.metrics.get("method")
        if isinstance(methods, list):
            return ", ".join(str(m) for m in methods)
        return str(methods) if methods else self.folder.name


@dataclass
class Found:
    """What a folder tree holds that the report can show, plus the files it had to pass over and why."""

    runs: list[Path] = field(default_factory=list)
    generated: list[Path] = field(default_factory=list)
    evaluations: list[Evaluation] = field(default_factory=list)
    tables: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.runs or self.generated or self.evaluations or self.tables)


def json_object(path: Path, skipped: list[str]) -> dict[str, Any] | None:
    """The JSON object in `path`, or None (with the reason in `skipped` when the file is unreadable)."""
    if not path.is_file():
        return None
    try:
        data = read_json(path)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        skipped.append(f"{path}: not readable JSON ({error})")
        return None
    return data if isinstance(data, dict) else None


def _note_results_table(folder: Path, found: Found) -> None:
    """A sweep's results folder is one with results.csv; a results.md alone is for people, not read."""
    if (folder / RESULTS_CSV).is_file():
        found.tables.append(folder)
    elif (folder / RESULTS_MD).is_file():
        found.skipped.append(f"{folder / RESULTS_MD}: not shown; the report reads a sweep's {RESULTS_CSV}, "
                             "which this folder lacks")


def _is_run(folder: Path, skipped: list[str]) -> bool:
    if Run.is_run(folder):
        return True
    json_object(folder / "config.json", skipped)  # an unreadable config.json is listed, not passed over silently
    return False


def find_outputs(root: str | Path, max_depth: int = MAX_DEPTH) -> Found:
    """Walk `root` (depth 0) and sort what it finds; RUN, GEN and evaluation folders are not entered."""
    found = Found()

    def visit(folder: Path, depth: int) -> None:
        meta = json_object(folder / META_FILE, found.skipped)
        metrics = json_object(folder / METRICS_FILE, found.skipped)
        _note_results_table(folder, found)
        if meta is not None and meta.get("format") == GENERATED_FORMAT:
            found.generated.append(folder)
            return
        if metrics is not None and metrics.get("kind") in EVALUATION_KINDS:
            found.evaluations.append(Evaluation(folder, metrics))
            return
        if _is_run(folder, found.skipped):
            found.runs.append(folder)
            return
        if depth >= max_depth:
            return
        try:
            children = sorted(p for p in folder.iterdir()
                              if p.is_dir() and not p.name.startswith(".") and p.name != FILES_FOLDER)
        except OSError as error:
            found.skipped.append(f"{folder}: not readable ({error.strerror})")
            return
        for child in children:
            visit(child, depth + 1)

    visit(Path(root), 0)
    return found
