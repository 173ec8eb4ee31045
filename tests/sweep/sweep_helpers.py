"""Tiny sweep settings for the sweep's tests: the micro base, one training step, a 32 px evaluation."""

import csv
from pathlib import Path

import pytest

from dualanodiff.cli import main
from dualanodiff.evaluate.settings import LocalizationSettings
from dualanodiff.generation.settings import GenerateSettings
from dualanodiff.model.config import DualConfig
from dualanodiff.sweep import SweepSettings, train_template

TINY_EVALUATION_ARGS = ("--eval-epochs", "1", "--eval-resolution", "32", "--eval-base-width", "2")


def run_cli(*args) -> int:
    with pytest.raises(SystemExit) as exit_:
        main([str(arg) for arg in args])
    return exit_.value.code


def tiny_train_args(base_dir: Path) -> tuple[str, ...]:
    return ("--base-model", str(base_dir), "--resolution", "32", "--steps", "1", "--batch-size", "2", "--rank", "4")


def tiny_sweep(data: Path, out: Path, base_dir: Path, **changes) -> SweepSettings:
    """The settings `tiny_train_args` and `TINY_EVALUATION_ARGS` make, through the Python API."""
    values = {"objects": ("washer",), "num": 2,
              "train": train_template(base_model=str(base_dir), resolution=32, steps=1, batch_size=2,
                                      model=DualConfig(rank=4)),
              "generate": GenerateSettings(num=1, steps=1, qc="off"), "localization":
              LocalizationSettings(epochs=1, resolution=32, base_width=2), **changes}
    return SweepSettings(data=data, out=out, **values)


def csv_rows(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    return {(row["object"], row["anomaly"]): row for row in csv.DictReader(path.open())}
