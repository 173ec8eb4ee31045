"""Windows: square crops of an image, resized to the model's input side (the window canvas).

A window is (top, left, side) in pixels of the image it is cut from. Training cuts windows around the anomalies,
the tiny base learns windows of the normal images, generation draws into a window of a real normal image: all three
go through `crop_windows`, so what the model sees is cut and resampled one way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torchvision.ops import roi_align

Window = tuple[int, int, int]  # top, left, side
SIDE_JITTER = 0.15  # a window's side varies by up to this fraction either way
CONTEXT_BINS = (16, 8)  # brightness and gradient-magnitude histogram bins of a window's context descriptor
ROUND = 1.5  # an object whose long axis is shorter than this times its short one has no long axis to go along


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
                 size: int, turns: Sequence[float] | None = None) -> torch.Tensor:
    """Window k of image `image_index[k]` of `pixels` (N, C, H, W), resampled to (K, C, size, size).

    Bilinear, with as many samples per output pixel as the window has input pixels per output pixel, so a large
    window is averaged down rather than aliased; a window of side `size` is cut out exactly. `turns[k]` (degrees,
    counter-clockwise) turns window k about its centre before it is cut: its content comes out turned by the
    opposite angle, corners from the image around it (edges replicated beyond the image); a window not turned is
    cut exactly as without `turns`."""
    boxes = torch.tensor([[index, left, top, left + side, top + side]
                          for index, (top, left, side) in zip(image_index, windows, strict=True)],
                         dtype=pixels.dtype, device=pixels.device)
    cut = roi_align(pixels, boxes, output_size=size, spatial_scale=1.0, sampling_ratio=-1, aligned=True)
    turned = [k for k, turn in enumerate(turns or ()) if turn % 360]
    if turned:
        cut[turned] = _turned_windows(pixels, boxes[turned], torch.tensor([turns[k] for k in turned]), size)
    return cut


def _turned_windows(pixels: torch.Tensor, boxes: torch.Tensor, degrees: torch.Tensor, size: int) -> torch.Tensor:
    """`crop_windows` of boxes turned by `degrees`: a box grown by what a turn brings into it is averaged down as
    roi_align does, then turned (bilinear) and cut back to the box."""
    margin = math.ceil(size * (math.sqrt(2) - 1) / 2) + 1  # output pixels a turn brings into the box's corners
    sides = boxes[:, 3] - boxes[:, 1]
    grow = sides * margin / size
    pad = math.ceil(float(grow.max())) + 1
    padded = torch.nn.functional.pad(pixels, (pad, pad, pad, pad), mode="replicate")
    grown = torch.stack([boxes[:, 0], boxes[:, 1] - grow + pad, boxes[:, 2] - grow + pad, boxes[:, 3] + grow + pad,
                         boxes[:, 4] + grow + pad], dim=1)
    larger = roi_align(padded, grown, output_size=size + 2 * margin, spatial_scale=1.0, sampling_ratio=-1,
                       aligned=True)
    radians = torch.deg2rad(degrees.to(pixels.dtype))
    cos, sin, zero = radians.cos(), radians.sin(), torch.zeros_like(radians)
    # (the grid's y axis points down: this turns the sampled square counter-clockwise as the image shows it)
    theta = torch.stack([torch.stack([cos, sin, zero], 1), torch.stack([-sin, cos, zero], 1)], 1).to(pixels.device)
    grid = torch.nn.functional.affine_grid(theta, list(larger.shape), align_corners=False)
    turned = torch.nn.functional.grid_sample(larger, grid, mode="bilinear", padding_mode="border",
                                             align_corners=False)
    return turned[..., margin:margin + size, margin:margin + size]


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


def object_position(objects: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Where points (N x 2: row, column, in pixels) lie on an object (a bool HxW mask), however the object lies: on
    an elongated one (its long axis at least ROUND times its short one), along the long axis, from the end its mass
    is heavier at (0: a screw's head, which its long thin thread tails away from) to the other end (1); on a round
    one, from its centre (0) to its outline (1). A screw's neck is at about 0.3 at any angle."""
    pixels = np.argwhere(objects) + 0.5
    centre = pixels.mean(axis=0)
    offsets, points = pixels - centre, np.asarray(points, np.float64).reshape(-1, 2) - centre
    variances, axes = np.linalg.eigh(np.cov(offsets.T))  # (ascending: the long axis last)
    if variances[1] < ROUND ** 2 * variances[0]:
        return np.hypot(*points.T) / max(float(np.hypot(*offsets.T).max()), 1e-9)
    axis = axes[:, 1]
    along = offsets @ axis
    if np.mean(along ** 3) < 0:  # the long tail (skew) points away from the heavy end, which goes to 0
        axis, along = -axis, -along
    return (points @ axis - along.min()) / max(float(np.ptp(along)), 1e-9)
