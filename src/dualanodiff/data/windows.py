"""Windows: square crops of an image, resized to the model's input side (the window canvas).

A window is (top, left, side) in pixels of the image it is cut from. Training cuts windows around the anomalies,
the tiny base learns windows of the normal images, generation draws into a window of a real normal image: all three
go through `crop_windows`, so what the model sees is cut and resampled one way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torchvision.ops import roi_align

Window = tuple[int, int, int]  # top, left, side
SIDE_JITTER = 0.15  # a window's side varies by up to this fraction either way
CONTEXT_BINS = (16, 8)  # brightness and gradient-magnitude histogram bins of a window's context descriptor


def anomaly_extent(mask: np.ndarray) -> tuple[float, float, int]:
    """(centre row, centre column, extent) of a mask's bounding box; the extent is its longer side in pixels."""
    rows, columns = np.nonzero(mask)
    top, bottom, left, right = rows.min(), rows.max() + 1, columns.min(), columns.max() + 1
    return (top + bottom) / 2, (left + right) / 2, int(max(bottom - top, right - left))


def window_side(extent: float, margin: float, smallest: int, largest: int) -> int:
    """The side of a window that holds an anomaly of `extent` pixels with `margin` of it on each side."""
    return int(np.clip(round(extent * (1 + 2 * margin)), smallest, largest))


def jitter_side(side: int, draw: float, smallest: int, largest: int) -> int:
    """`side` scaled by 1 +- SIDE_JITTER, for `draw` in [0, 1)."""
    return int(np.clip(round(side * (1 + SIDE_JITTER * (2 * draw - 1))), smallest, largest))


def place_window(centre_row: float, centre_column: float, side: int, height: int, width: int) -> Window:
    """The window of `side` centred as near the given point as the image's edges allow."""
    side = int(min(side, height, width))
    top = int(np.clip(round(centre_row - side / 2), 0, height - side))
    left = int(np.clip(round(centre_column - side / 2), 0, width - side))
    return top, left, side


def crop_windows(pixels: torch.Tensor, image_index: Sequence[int], windows: Sequence[Window],
                 size: int) -> torch.Tensor:
    """Window k of image `image_index[k]` of `pixels` (N, C, H, W), resampled to (K, C, size, size).

    Bilinear, with as many samples per output pixel as the window has input pixels per output pixel, so a large
    window is averaged down rather than aliased; a window of side `size` is cut out exactly."""
    boxes = torch.tensor([[index, left, top, left + side, top + side]
                          for index, (top, left, side) in zip(image_index, windows, strict=True)],
                         dtype=pixels.dtype, device=pixels.device)
    return roi_align(pixels, boxes, output_size=size, spatial_scale=1.0, sampling_ratio=-1, aligned=True)


def context_descriptor(image: np.ndarray, window: Window, exclude: np.ndarray | None = None) -> np.ndarray:
    """What surrounds a place, rotation-free: the histograms of brightness and of gradient magnitude over the
    window of a uint8 HxWx3 image (without the pixels `exclude` marks, such as the anomaly itself), concatenated.
    A screw's head and its thread, or a fabric's weave and its seam, fall far apart."""
    top, left, side = window
    grey = image[top:top + side, left:left + side].astype(np.float32).mean(axis=2) / 255
    rows, columns = np.gradient(grey)
    keep = np.ones_like(grey, bool) if exclude is None else ~exclude[top:top + side, left:left + side]
    if not keep.any():
        keep[:] = True
    brightness = np.histogram(grey[keep], bins=CONTEXT_BINS[0], range=(0, 1))[0]
    gradient = np.histogram(np.hypot(rows, columns)[keep], bins=CONTEXT_BINS[1], range=(0, 0.25))[0]
    return np.concatenate([brightness / brightness.sum(), gradient / gradient.sum()])
