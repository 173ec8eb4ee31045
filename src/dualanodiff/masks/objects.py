"""Object masks for BCM (SPEC section 3): where the object is, so that its background I_b = (1 - M_f) x I can be cut.

The paper segments with U^2-Net, whose weights cannot be downloaded here, so the default segmenter needs none: it
learns the background colour from the image borders of the object's normal images (MVTec-style photos show one
object on a plain background) and marks as object what differs from it. `--object-masks DIR` takes masks made with
any tool (U^2-Net, SAM, by hand), and `--object-segmenter module.path:factory` plugs in a segmenter of the user's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from scipy import ndimage

from dualanodiff.data import load_mask, resized_mask
from dualanodiff.errors import DataError
from dualanodiff.masks.components import fill_small_holes, keep_components
from dualanodiff.plugins import load_plugin


class ObjectSegmenter(Protocol):
    """Returns the object mask (bool HxW) of a uint8 HxWx3 image; `fit` sees the object's normal images first."""

    def fit(self, normal_images: Sequence[np.ndarray]) -> ObjectSegmenter: ...

    def __call__(self, image: np.ndarray) -> np.ndarray: ...


class BorderColourSegmenter:
    """Object = pixels whose colour is far from the background's, learnt from the border of the normal images.

    `distance` is in robust standard deviations of the border colour (per channel, from the median absolute
    deviation, at least `min_spread` grey levels); small specks are dropped, small holes filled (large ones, like a
    washer's hole, stay background). Measured trade-off of `distance`: at 4 the MVTec screw's masks are about twice
    the screw's width (its soft shadow counts as object), at 10 they follow its outline but the synthetic washer's
    ring opens where its metal is dark (its hole joins the background); 4 keeps every ring whole.
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
        mask = keep_components(mask, self.min_object * mask.size)
        return fill_small_holes(mask, self.max_hole * mask.size)


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
                return resized_mask(mask, size)
        raise DataError(f"{self.folder}: no object mask for {image_path} (looked for {candidates[0]})")


def load_object_segmenter(spec: str) -> ObjectSegmenter:
    """`border` (the weight-free default) or `module.path:factory` for a segmenter of the user's."""
    return load_plugin(spec, {"border": BorderColourSegmenter}, what="object segmenter")


def remove_object(images: list[np.ndarray], masks: list[np.ndarray]) -> list[np.ndarray]:
    """I_b = (1 - M_f) x I: the object painted black."""
    return [np.where(mask[..., None], 0, image).astype(np.uint8) for image, mask in zip(images, masks, strict=True)]
