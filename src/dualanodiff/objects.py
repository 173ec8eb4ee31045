"""Object masks and background images for BCM (SPEC section 3).

BCM conditions the global branch on the background image I_b = (1 - M_f) x I, where M_f is the object's mask. The
paper segments with U^2-Net, whose weights cannot be downloaded here, so the default segmenter needs none: it learns
the background colour from the image borders of the object's normal images (MVTec-style photos show one object on
a plain background) and marks as object what differs from it. `--object-masks DIR` takes masks made with any tool
(U^2-Net, SAM, by hand), and `--object-segmenter module.path:factory` plugs in a segmenter of the user's.

A BCM run stores what it used, so that a person can check it and generation needs no data set:
RUN/object_masks/anomaly/<stem>.png and RUN/object_masks/normal/<stem>.png (the training and normal images'
object masks) and RUN/backgrounds/<stem>.png (the normal images' I_b, which generation draws from).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from dualanodiff.data import load_mask, load_pixels, to_pixels, to_uint8
from dualanodiff.errors import DataError, UserError
from dualanodiff.io import save_image

if TYPE_CHECKING:
    from dualanodiff.config import TrainConfig
    from dualanodiff.data import AnomalySample, DataSource

OBJECT_MASKS_FOLDER = "object_masks"
BACKGROUNDS_FOLDER = "backgrounds"


class ObjectSegmenter(Protocol):
    """Returns the object mask (bool HxW) of a uint8 HxWx3 image; `fit` sees the object's normal images first."""

    def fit(self, normal_images: Sequence[np.ndarray]) -> ObjectSegmenter: ...

    def __call__(self, image: np.ndarray) -> np.ndarray: ...


class BorderColourSegmenter:
    """Object = pixels whose colour is far from the background's, learnt from the border of the normal images.

    `distance` is in robust standard deviations of the border colour (per channel, from the median absolute
    deviation); small specks are dropped, small holes filled (large ones, like a washer's hole, stay background).
    """

    def __init__(self, border: float = 0.04, distance: float = 4.0, min_spread: float = 6.0,
                 min_object: float = 0.002, max_hole: float = 0.01):
        self.border, self.distance, self.min_spread = border, distance, min_spread
        self.min_object, self.max_hole = min_object, max_hole
        self.colour: np.ndarray | None = None
        self.spread: np.ndarray | None = None

    def _border_pixels(self, image: np.ndarray) -> np.ndarray:
        width = max(1, round(self.border * min(image.shape[:2])))
        frame = np.ones(image.shape[:2], bool)
        frame[width:-width, width:-width] = False
        return image[frame].astype(np.float32)

    def fit(self, normal_images: Sequence[np.ndarray]) -> BorderColourSegmenter:
        if not normal_images:
            raise DataError("BCM's object segmenter needs the object's normal images; none found")
        pixels = np.concatenate([self._border_pixels(image) for image in normal_images])
        self.colour = np.median(pixels, axis=0)
        deviation = np.median(np.abs(pixels - self.colour), axis=0) * 1.4826  # MAD -> standard deviation
        self.spread = np.maximum(deviation, self.min_spread)
        return self

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if self.colour is None:
            raise RuntimeError("call fit(normal_images) first")
        side = min(image.shape[:2])
        smooth = ndimage.gaussian_filter(image.astype(np.float32), sigma=(side / 256, side / 256, 0))
        mask = (np.abs(smooth - self.colour) / self.spread).max(axis=2) > self.distance
        mask = ndimage.binary_opening(mask, iterations=max(1, side // 128))
        labels, count = ndimage.label(mask)
        if count:
            sizes = ndimage.sum_labels(mask, labels, np.arange(1, count + 1))
            mask = np.isin(labels, np.flatnonzero(sizes >= self.min_object * mask.size) + 1)
        holes = ndimage.binary_fill_holes(mask) & ~mask
        hole_labels, hole_count = ndimage.label(holes)
        if hole_count:
            hole_sizes = ndimage.sum_labels(holes, hole_labels, np.arange(1, hole_count + 1))
            mask |= np.isin(hole_labels, np.flatnonzero(hole_sizes < self.max_hole * mask.size) + 1)
        return mask


class FolderMasks:
    """Object masks the user made, in a folder that mirrors the data set (DIR/train/good/000.png for
    ROOT/<object>/train/good/000.png), or flat (DIR/<stem>.png) when file names are unique; `_mask` suffix allowed."""

    def __init__(self, folder: str | Path, object_root: Path):
        self.folder = Path(folder)
        self.object_root = object_root
        if not self.folder.is_dir():
            raise DataError(f"{self.folder}: object mask folder not found")

    def mask_for(self, image_path: Path, size: int) -> np.ndarray:
        try:
            mirrored = self.folder / image_path.parent.relative_to(self.object_root)
        except ValueError:
            mirrored = self.folder
        candidates = [folder / f"{image_path.stem}{suffix}.png" for folder in (mirrored, self.folder)
                      for suffix in ("", "_mask")]
        for candidate in candidates:
            if candidate.is_file():
                mask = load_mask(candidate)
                return np.asarray(Image.fromarray(mask).resize((size, size), Image.Resampling.NEAREST))
        raise DataError(f"{self.folder}: no object mask for {image_path} (looked for {candidates[0]})")


def load_object_segmenter(spec: str) -> ObjectSegmenter:
    if spec == "border":
        return BorderColourSegmenter()
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        raise UserError(f"unknown object segmenter {spec!r}; use 'border' or module.path:factory")
    try:
        return getattr(importlib.import_module(module_name), attribute)()
    except (ImportError, AttributeError) as error:
        raise UserError(f"object segmenter {spec!r}: cannot load it ({error})") from None


def remove_object(images: list[np.ndarray], masks: list[np.ndarray]) -> list[np.ndarray]:
    """I_b = (1 - M_f) x I: the object painted black."""
    return [np.where(mask[..., None], 0, image).astype(np.uint8) for image, mask in zip(images, masks, strict=True)]


def prepare_backgrounds(config: TrainConfig, source: DataSource, training: list[AnomalySample],
                        training_pixels: torch.Tensor, run_dir: Path) -> torch.Tensor:
    """Object masks of the training images and of the normal images, saved into the run with the normal images'
    backgrounds; returns the training images' backgrounds as (N, 3, R, R) in [-1, 1]."""
    resolution = config.resolution
    normal_paths = source.normal_train(config.object)
    normal_images = list(to_uint8(load_pixels(normal_paths, resolution)))
    training_images = list(to_uint8(training_pixels))
    if config.object_masks is not None:
        folder = FolderMasks(config.object_masks, Path(config.data_root) / config.object)
        training_masks = [folder.mask_for(sample.image_path, resolution) for sample in training]
        normal_masks = [folder.mask_for(path, resolution) for path in normal_paths]
    else:
        segmenter = load_object_segmenter(config.object_segmenter).fit(normal_images)
        training_masks = [segmenter(image) for image in training_images]
        normal_masks = [segmenter(image) for image in normal_images]
    # Anomaly and normal images may share file names (MVTec numbers both from 000), hence two folders.
    for kind, paths, masks in (("anomaly", [sample.image_path for sample in training], training_masks),
                               ("normal", normal_paths, normal_masks)):
        for path, mask in zip(paths, masks, strict=True):
            save_image(run_dir / OBJECT_MASKS_FOLDER / kind / f"{path.stem}.png", mask.astype(np.uint8) * 255)
    for path, background in zip(normal_paths, remove_object(normal_images, normal_masks), strict=True):
        save_image(run_dir / BACKGROUNDS_FOLDER / f"{path.stem}.png", background)
    return to_pixels(remove_object(training_images, training_masks))


class BackgroundBank:
    """The backgrounds generation conditions on: sample i takes background number rng(seed, i // every)."""

    def __init__(self, folder: Path, masks_folder: Path):
        self.paths = sorted(folder.glob("*.png"))
        if not self.paths:
            raise UserError(f"{folder}: no background images; retrain with --bcm")
        self.masks_folder = masks_folder
        self._loaded: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    @classmethod
    def from_run(cls, run_dir: Path) -> BackgroundBank:
        return cls(run_dir / BACKGROUNDS_FOLDER, run_dir / OBJECT_MASKS_FOLDER / "normal")

    def choose(self, index: int, seed: int, every: int) -> Path:
        block = index // max(every, 1)
        return self.paths[int(np.random.default_rng([seed, block]).integers(len(self.paths)))]

    def _load(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A background (uint8 HxWx3) and where it is not object (bool HxW), read once per bank."""
        if name not in self._loaded:
            background = np.asarray(Image.open(self.paths[0].parent / f"{name}.png").convert("RGB"))
            outside = ~(np.asarray(Image.open(self.masks_folder / f"{name}.png")) >= 128)
            self._loaded[name] = background, outside
        return self._loaded[name]

    def for_samples(self, indices: Sequence[int], seed: int, every: int) -> tuple[torch.Tensor, list[str]]:
        names = [self.choose(index, seed, every).stem for index in indices]
        return to_pixels([self._load(name)[0] for name in names]), names

    def preservation(self, image: np.ndarray, name: str) -> float | None:
        """Background preservation: mean |generated - background| outside the object mask, 0..1 (lower: kept)."""
        background, outside = self._load(name)
        if background.shape[:2] != image.shape[:2] or not outside.any():
            return None
        difference = np.abs(image.astype(np.float32) - background.astype(np.float32)) / 255
        return float(difference[outside].mean())
