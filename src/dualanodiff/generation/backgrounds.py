"""The backgrounds a BCM run's generation conditions on, and how well a sample keeps its background."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from dualanodiff.data import load_rgb, read_mask, to_pixels
from dualanodiff.errors import UserError
from dualanodiff.training.run import Run


class BackgroundBank:
    """Sample i takes background number rng(seed, i // every) of a run's normal-image backgrounds."""

    def __init__(self, run: Run):
        self.run = run
        self.paths = run.background_paths()
        if not self.paths:
            raise UserError(f"{run.root}: no background images; retrain with --bcm")
        self._loaded: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def choose(self, index: int, seed: int, every: int) -> Path:
        block = index // max(every, 1)
        return self.paths[int(np.random.default_rng([seed, block]).integers(len(self.paths)))]

    def _load(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A background (uint8 HxWx3) and where it is not object (bool HxW), read once per bank."""
        if name not in self._loaded:
            background = np.asarray(load_rgb(self.run.background_path(name)))
            outside = ~read_mask(self.run.object_mask_path("normal", name))
            self._loaded[name] = background, outside
        return self._loaded[name]

    def image(self, name: str) -> np.ndarray:
        """Background `name` (uint8 HxWx3)."""
        return self._load(name)[0]

    def outside_object(self, name: str) -> np.ndarray:
        """Where background `name`'s normal image is not the object (bool HxW)."""
        return self._load(name)[1]

    def for_samples(self, indices: Sequence[int], seed: int, every: int) -> tuple[torch.Tensor, list[str]]:
        names = [self.choose(index, seed, every).stem for index in indices]
        return to_pixels([self.image(name) for name in names]), names

    def preservation(self, image: np.ndarray, name: str) -> float | None:
        """Background preservation: mean |generated - background| outside the object mask, 0..1 (lower: kept)."""
        background, outside = self._load(name)
        if background.shape[:2] != image.shape[:2] or not outside.any():
            return None
        difference = np.abs(image.astype(np.float32) - background.astype(np.float32)) / 255
        return float(difference[outside].mean())
