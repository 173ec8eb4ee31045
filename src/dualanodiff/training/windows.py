"""What a window-canvas run trains on: windows around the training anomalies (with the matching windows of the
anomaly part and the background), windows of the normal images for the tiny base, and the statistics generation
draws its windows from (`Run.windows()`).

A window's side follows the anomaly's extent with a margin on each side, at least the model's input side (so a
3-px scratch is drawn at full detail) and at most the whole image (a large break is shrunk to the input side).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy import ndimage

from dualanodiff.data import anomaly_extent, context_descriptor, crop_windows, jitter_side, place_window, window_side

WINDOWS_PER_IMAGE = 64  # cut once per training image, then encoded once, as whole images are
ON_OBJECT_RATE = 0.75  # of the tiny base's windows, the share centred on the object (the rest anywhere)


def anomaly_depth(mask: np.ndarray, object_mask: np.ndarray) -> float | None:
    """How deep inside the object the anomaly's centre lies: 0 at the object's edge, 1 at its most inner point
    (None for a texture, where there is no object to be inside)."""
    if not object_mask.any() or object_mask.all():
        return None
    inside = ndimage.distance_transform_edt(object_mask)
    rows, columns = np.nonzero(mask)
    return float(inside[int(rows.mean()), int(columns.mean())] / inside.max())


def window_statistics(images: np.ndarray, masks: np.ndarray, object_masks: list[np.ndarray], margin: float,
                      smallest: int) -> dict[str, Any]:
    """Per training anomaly (uint8 images N x W x W x 3, masks N x W x W): its window's side, its depth in the
    object, and the context descriptor of its window without the anomaly: what generation draws from."""
    largest = masks.shape[-1]
    sides, contexts = [], []
    for image, mask in zip(images, masks, strict=True):
        centre_row, centre_column, extent = anomaly_extent(mask)
        sides.append(window_side(extent, margin, smallest, largest))
        window = place_window(centre_row, centre_column, sides[-1], largest, largest)
        contexts.append(context_descriptor(image, window, ndimage.binary_dilation(mask, iterations=2)).tolist())
    return {"working_resolution": largest, "margin": margin, "sides": sides, "contexts": contexts,
            "depths": [anomaly_depth(mask, objects) for mask, objects in zip(masks, object_masks, strict=True)]}


def _flip(windows: torch.Tensor, flips: tuple[bool, bool], generator: torch.Generator) -> torch.Tensor:
    """Each window (K, ..., H, W) flipped left-right and/or upside down at random, where the run allows it."""
    for enabled, dim in zip(flips, (-1, -2), strict=True):
        if enabled:
            chosen = torch.rand(len(windows), generator=generator) < 0.5
            windows[chosen] = windows[chosen].flip(dim)
    return windows


def training_windows(pixels: torch.Tensor, masks: np.ndarray, *, margin: float, size: int,
                     flips: tuple[bool, bool], generator: torch.Generator,
                     count: int = WINDOWS_PER_IMAGE) -> torch.Tensor:
    """`count` windows around each training anomaly, of every stream: (N, S, 3, W, W) -> (N, count, S, 3, R, R).

    The side is jittered, and the centre moves by up to the slack between window and anomaly, so that the anomaly
    stays inside the window but not always in its middle."""
    images, streams, _, height, width = pixels.shape
    index, windows = [], []
    for n, mask in enumerate(masks):
        centre_row, centre_column, extent = anomaly_extent(mask)
        side = window_side(extent, margin, size, min(height, width))
        draws = torch.rand((count, 3), generator=generator).tolist()
        for side_draw, row_draw, column_draw in draws:
            drawn = jitter_side(side, side_draw, max(size, extent), min(height, width))
            slack = max(drawn - extent, 0) / 2
            windows.append(place_window(centre_row + slack * (2 * row_draw - 1),
                                        centre_column + slack * (2 * column_draw - 1), drawn, height, width))
            index.append(n)
    stacked = pixels.flatten(1, 2)  # (N, S*3, W, W): one crop cuts every stream at the same place
    cut = crop_windows(stacked, index, windows, size).view(images, count, streams, 3, size, size)
    return _flip(cut.flatten(0, 1), flips, generator).view_as(cut)


class NormalWindows:
    """Windows of the normal images for the tiny base: sides from the model's input to the whole image (log-uniform),
    mostly centred on the object, so the base knows the object at every scale the dual model will draw."""

    def __init__(self, images: torch.Tensor, object_masks: list[np.ndarray], flips: tuple[bool, bool]):
        self.images = images  # uint8 (M, 3, W, W)
        self.object_pixels = [np.argwhere(mask) for mask in object_masks]
        self.flips = flips

    def draw(self, batch_size: int, size: int, generator: torch.Generator) -> torch.Tensor:
        """A batch of windows, (B, 3, size, size) in [-1, 1]."""
        height, width = self.images.shape[-2:]
        chosen = torch.randint(len(self.images), (batch_size,), generator=generator).tolist()
        draws = torch.rand((batch_size, 4), generator=generator).tolist()
        windows = []
        for image, (side_draw, place_draw, row_draw, column_draw) in zip(chosen, draws, strict=True):
            side = round(size * (min(height, width) / size) ** side_draw)
            object_pixels = self.object_pixels[image]
            if len(object_pixels) and place_draw < ON_OBJECT_RATE:
                row, column = object_pixels[int(row_draw * len(object_pixels))]
            else:
                row, column = row_draw * height, column_draw * width
            windows.append(place_window(row, column, side, height, width))
        pixels = self.images[chosen].float() / 127.5 - 1
        return _flip(crop_windows(pixels, range(batch_size), windows, size), self.flips, generator)
