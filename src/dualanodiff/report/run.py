"""A training run (RUN folder) as the report sees it: what is read from it, through `Run`, which owns the layout."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dualanodiff.report.find import json_object
from dualanodiff.training.run import Run


@dataclass(frozen=True)
class LossLog:
    steps: list[float]
    losses: list[float]


@dataclass(frozen=True)
class RunFolder:
    """What the report shows of a RUN; `problems` says which of its files could not be read."""

    folder: Path
    config: dict[str, Any]
    loss: LossLog | None = None
    split: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def run(self) -> Run:
        return Run(self.folder)

    @property
    def config_path(self) -> Path:
        return self.run.config_path

    @property
    def loss_csv(self) -> Path | None:
        return self.run.loss_csv if self.run.loss_csv.is_file() else None

    @property
    def loss_png(self) -> Path | None:
        return self.run.loss_png if self.run.loss_png.is_file() else None

    @property
    def contact_sheet(self) -> Path | None:
        return self.run.contact_sheet if self.run.contact_sheet.is_file() else None

    @property
    def split_path(self) -> Path:
        return self.run.split_path


def read_loss_csv(path: Path) -> LossLog:
    """The step,loss columns of a training run's loss.csv; ValueError says why a file is not one."""
    try:
        with path.open(newline="") as file:
            reader = csv.DictReader(file)
            if not reader.fieldnames or not {"step", "loss"} <= set(reader.fieldnames):
                raise ValueError(f"needs the columns step,loss, has {reader.fieldnames}")
            rows = [(float(row["step"]), float(row["loss"])) for row in reader]
    except (OSError, UnicodeDecodeError, TypeError, csv.Error) as error:
        raise ValueError(str(error)) from None
    if not rows:
        raise ValueError("holds no rows")
    steps, losses = zip(*rows, strict=True)
    return LossLog(list(steps), list(losses))


def read_run(folder: Path) -> RunFolder:
    """config.json, loss.csv and split.json of a folder `Run.is_run` accepted, read once."""
    run, problems = Run(folder), []
    loss = None
    if run.loss_csv.is_file():
        try:
            loss = read_loss_csv(run.loss_csv)
        except ValueError as error:
            problems.append(f"{run.loss_csv}: not a loss log ({error})")
    split = json_object(run.split_path, problems)
    return RunFolder(folder, json_object(run.config_path, []) or {}, loss, split, problems)
