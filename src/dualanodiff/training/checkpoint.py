"""Training checkpoints and loss logs, shared by the dual training loop and the tiny base pre-training.

A checkpoint is a folder `checkpoints/step-NNNNNN/` holding the trainable weights (safetensors) and the rest of the
training state: optimizer, random generators, loss history (torch.save, read back with weights_only=True, so a
checkpoint cannot run code). `state.pt` is written last: a folder without it is an interrupted save and is ignored.
"""

from __future__ import annotations

import csv
import io
import shutil
import sys
from pathlib import Path
from typing import Any

import torch

from dualanodiff.errors import ModelError
from dualanodiff.io import atomic_write
from dualanodiff.training.run import CHECKPOINTS_FOLDER, LOSS_CSV, LOSS_PNG
from dualanodiff.viz import plot_loss_curve
from dualanodiff.weights import load_weights, save_weights

WEIGHTS_FILE = "weights.safetensors"
STATE_FILE = "state.pt"


def save_checkpoint(run_dir: Path, step: int, tensors: dict[str, torch.Tensor], state: dict[str, Any],
                    keep: int) -> Path:
    folder = run_dir / CHECKPOINTS_FOLDER / f"step-{step:06d}"
    folder.mkdir(parents=True, exist_ok=True)
    save_weights(folder / WEIGHTS_FILE, tensors)

    def write_state(tmp: Path) -> None:
        torch.save({**state, "step": step}, tmp)

    atomic_write(folder / STATE_FILE, write_state)
    for old in complete_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def complete_checkpoints(run_dir: Path) -> list[Path]:
    folder = run_dir / CHECKPOINTS_FOLDER
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("step-*") if (p / STATE_FILE).is_file() and (p / WEIGHTS_FILE).is_file())


def load_checkpoint(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    try:
        state = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)
    except Exception as error:  # a damaged or foreign pickle: refuse it, never execute it
        raise ModelError(f"{folder / STATE_FILE}: refused: damaged, or not plain tensors and numbers "
                         f"({type(error).__name__})") from None
    return load_weights(folder / WEIGHTS_FILE), state


def latest_intact_checkpoint(run_dir: Path) -> tuple[Path, dict[str, torch.Tensor], dict[str, Any]] | None:
    """The newest checkpoint that loads (older ones are tried when a newer one is damaged), or None."""
    for folder in reversed(complete_checkpoints(run_dir)):
        try:
            return folder, *load_checkpoint(folder)
        except ModelError as error:
            print(f"warning: {error}; trying the checkpoint before it", file=sys.stderr)
    return None


class LossLog:
    """Loss per optimizer step, written as loss.csv and drawn as loss.png."""

    def __init__(self, columns: tuple[str, ...], rows: list[list[float]] | None = None):
        self.columns = columns
        self.rows: list[list[float]] = rows or []

    def add(self, step: int, *values: float) -> None:
        self.rows.append([step, *values])

    def write(self, folder: Path, title: str) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["step", *self.columns])
        writer.writerows(self.rows)
        atomic_write(folder / LOSS_CSV, lambda tmp: tmp.write_text(buffer.getvalue()))
        if self.rows:
            plot_loss_curve([row[0] for row in self.rows], [row[1] for row in self.rows], folder / LOSS_PNG,
                            title=title)
