"""The RUN folder: one trained DualAnoDiff model per (object, anomaly type). This module is its only owner: every
other module reads and writes a run through `Run`.

    RUN/config.json          every training setting (TrainSettings), the format tag, where the base model is
    RUN/split.json           which anomaly images trained and which are held out (data.split's format)
    RUN/weights.safetensors  the adapters (DualAnoDiffModel.save_pretrained): never the frozen base
    RUN/base/                the tiny preset's base model (sd15 runs name their base in config.json instead)
    RUN/object_masks/{anomaly,normal}/<stem>.png, RUN/backgrounds/<stem>.png
                             with BCM: the object masks used and the normal images' backgrounds
    RUN/loss.csv, loss.png   the training curve;  RUN/checkpoints/  the latest checkpoints, for --resume
                             (both train.checkpoint's format, shared with the tiny base's cache folder)

A run is complete once its weights are written (the last file training writes).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from dualanodiff.data.split import Split, read_split, split_rule_text, write_split
from dualanodiff.errors import ModelError, UserError
from dualanodiff.io import read_json, save_image, write_json
from dualanodiff.model.config import ADAPTER_WEIGHTS
from dualanodiff.training.settings import TrainSettings

FORMAT = "dualanodiff-run/1"
CONFIG_FILE = "config.json"
SPLIT_FILE = "split.json"
TINY_BASE_FOLDER = "base"
OBJECT_MASKS_FOLDER = "object_masks"
BACKGROUNDS_FOLDER = "backgrounds"
CONTACT_SHEET = "contact_sheet.png"
WINDOWS_FILE = "windows.json"  # window canvas: the training windows' sides and where the anomalies sit
# A training folder's checkpoints and loss log (train.checkpoint writes them; the tiny base's cache folder too).
CHECKPOINTS_FOLDER = "checkpoints"
LOSS_CSV, LOSS_PNG = "loss.csv", "loss.png"
MASK_KINDS = ("anomaly", "normal")  # training images' and normal images' object masks (their names may clash)
# Keys config.json holds beside the settings; "rank" is an earlier version's copy of model.rank.
_NOT_SETTINGS = ("format", "base_model_path", "rank")
# Settings added after runs were first written: a run without them was made with the whole-image canvas.
_ADDED_LATER = ("canvas", "working_resolution", "window_margin")


class Run:
    """A RUN folder. `create` starts (or, with `resume`, re-opens) one for training; `open` reads one; `Run(root)`
    alone only names its files (the settings are read from config.json when first asked for)."""

    def __init__(self, root: str | Path, settings: TrainSettings | None = None, base_model_path: str | None = None):
        self.root = Path(root).resolve()
        self._settings = settings
        self._base_model_path = base_model_path

    @property
    def settings(self) -> TrainSettings:
        if self._settings is None:
            opened = Run.open(self.root)
            self._settings, self._base_model_path = opened.settings, opened._base_model_path
        return self._settings

    # --- opening -------------------------------------------------------------------------------------------------
    @staticmethod
    def is_run(folder: str | Path) -> bool:
        """Whether `folder` looks like a run: a config.json object with this format or training settings, or with
        training files beside it."""
        folder = Path(folder)
        config_path = Run(folder).config_path
        if not config_path.is_file():
            return False
        try:
            config = read_json(config_path)
        except (OSError, UserError):
            return False
        if not isinstance(config, dict):
            return False
        return (config.get("format") == FORMAT or any(key in config for key in ("preset", "object", "anomaly", "steps"))
                or any((folder / name).is_file() for name in (LOSS_CSV, LOSS_PNG, SPLIT_FILE)))

    @classmethod
    def open(cls, root: str | Path) -> Run:
        root = Path(root)
        config_path = root / CONFIG_FILE
        if not config_path.is_file():
            raise UserError(f"{root}: not a training run folder (no {CONFIG_FILE})")
        data = read_json(config_path)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise UserError(f"{config_path}: not a run's config (no \"format\": \"{FORMAT}\")")
        missing = [field.name for field in fields(TrainSettings)
                   if field.name not in data and field.name not in _ADDED_LATER]
        if missing:  # training writes every setting: a missing one was deleted by hand
            raise UserError(f"{config_path}: has no {', '.join(missing)} (a run's config.json holds every setting)")
        if isinstance(data.get("model"), dict):  # runs from before these options: no LoRA on the background,
            data["model"].setdefault("background_lora", "frozen")  # the base's own output convolution
            data["model"].setdefault("output_head", False)
        settings = TrainSettings.from_dict(data, where=str(config_path), ignore=_NOT_SETTINGS)
        return cls(root, settings, data.get("base_model_path"))

    @classmethod
    def create(cls, root: str | Path, settings: TrainSettings, *, resume: bool = False) -> Run:
        """A run folder for resolved `settings`: a new one, or with `resume` the same run continued."""
        root = Path(root)
        if (root / CONFIG_FILE).exists():
            if not resume:
                raise UserError(f"{root}: already holds a training run; pass --resume to continue it or choose "
                                "another --out")
            previous, current = cls.open(root).settings.to_dict(), settings.to_dict()
            changed = sorted(key for key, value in current.items() if previous.get(key) != value)
            if changed:
                raise UserError(f"{root}: --resume with other settings than the run was started with "
                                f"({', '.join(changed)})")
        root.mkdir(parents=True, exist_ok=True)
        return cls(root, settings)

    # --- what training writes ------------------------------------------------------------------------------------
    def write_config(self, base_model_path: str) -> Path:
        """config.json: the settings and where the base is (the run's own `base/`, a hub id, or a folder)."""
        self._base_model_path = base_model_path
        return write_json(self.root / CONFIG_FILE, {"format": FORMAT, "base_model_path": base_model_path,
                                                    **self.settings.to_dict()})

    def write_split(self, split: Split) -> Path:
        return write_split(self.root / SPLIT_FILE, split, object=self.settings.object,
                           anomaly=self.settings.anomaly, rule_text=split_rule_text(self.settings.train_count))

    @property
    def tiny_base_dir(self) -> Path:
        """Where the tiny preset keeps its own copy of the base model."""
        return self.root / TINY_BASE_FOLDER

    def save_object_mask(self, kind: str, stem: str, mask: np.ndarray) -> Path:
        return save_image(self.object_mask_path(kind, stem), mask.astype(np.uint8) * 255)

    def save_background(self, stem: str, background: np.ndarray) -> Path:
        return save_image(self.background_path(stem), background)

    def write_windows(self, statistics: dict[str, Any]) -> Path:
        return write_json(self.root / WINDOWS_FILE, statistics)

    # --- what generation and the report read ---------------------------------------------------------------------
    @property
    def weights_path(self) -> Path:
        return self.root / ADAPTER_WEIGHTS

    def is_complete(self) -> bool:
        return self.weights_path.is_file()

    def identity(self) -> str:
        """A hash of the trained weights and the settings: what a GEN records to refuse another run's samples."""
        digest = hashlib.sha256(json.dumps(self.settings.to_dict(), sort_keys=True).encode())
        with self.weights_path.open("rb") as weights:
            for block in iter(lambda: weights.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()[:16]

    def require_complete(self) -> Run:
        if not self.is_complete():
            raise ModelError(f"{self.root}: training has not finished (no {ADAPTER_WEIGHTS}); run train again "
                             "with --resume")
        return self

    @property
    def base_model(self) -> str | Path:
        """The base model: the run's own copy, a hub id, or an absolute folder; never relative to the caller."""
        reference = self._base_model_path or self.settings.base_model
        if reference is None:
            raise ModelError(f"{self.root / CONFIG_FILE}: names no base model")
        own = self.root / reference
        return own if own.is_dir() else reference

    def split(self) -> dict[str, Any]:
        return read_split(self.split_path)

    def background_paths(self) -> list[Path]:
        return sorted((self.root / BACKGROUNDS_FOLDER).glob("*.png"))

    def background_path(self, stem: str) -> Path:
        return self.root / BACKGROUNDS_FOLDER / f"{stem}.png"

    def object_mask_path(self, kind: str, stem: str) -> Path:
        return self.root / OBJECT_MASKS_FOLDER / kind / f"{stem}.png"

    def object_mask_stems(self, kind: str) -> list[str]:
        return sorted(path.stem for path in (self.root / OBJECT_MASKS_FOLDER / kind).glob("*.png"))

    def windows(self) -> dict[str, Any]:
        """A window-canvas run's training windows: per training anomaly its window's side (working-resolution
        pixels), depth in the object and context descriptor."""
        path = self.root / WINDOWS_FILE
        if not path.is_file():
            raise ModelError(f"{self.root}: a window-canvas run without {WINDOWS_FILE}; train it again")
        statistics = read_json(path)
        # (windows.json files of the first window-canvas version have no context descriptors to place windows by)
        if not isinstance(statistics, dict) or not {"sides", "contexts"} <= statistics.keys():
            raise ModelError(f"{path}: no window sides and context descriptors (written by an older version); "
                             "train the run again")
        return statistics

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def split_path(self) -> Path:
        return self.root / SPLIT_FILE

    @property
    def loss_csv(self) -> Path:
        return self.root / LOSS_CSV

    @property
    def loss_png(self) -> Path:
        return self.root / LOSS_PNG

    @property
    def contact_sheet(self) -> Path:
        return self.root / CONTACT_SHEET
