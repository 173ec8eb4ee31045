"""Connected-component clean-up shared by the anomaly masks and the object masks."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def component_sizes(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels, sizes): the label image of `mask` and the pixel count of components 1..n."""
    labels, count = ndimage.label(mask)
    sizes = ndimage.sum_labels(mask, labels, np.arange(1, count + 1)) if count else np.zeros(0)
    return labels, sizes


def keep_components(mask: np.ndarray, min_pixels: float, relative_to_largest: float = 0.0) -> np.ndarray:
    """`mask` without its components smaller than `min_pixels` or than `relative_to_largest` of its largest."""
    labels, sizes = component_sizes(mask)
    if not len(sizes):
        return mask
    return np.isin(labels, np.flatnonzero(sizes >= max(min_pixels, relative_to_largest * sizes.max())) + 1)


def fill_small_holes(mask: np.ndarray, max_pixels: float) -> np.ndarray:
    """`mask` with its holes smaller than `max_pixels` filled (larger ones, like a washer's hole, stay)."""
    holes = ndimage.binary_fill_holes(mask) & ~mask
    labels, sizes = component_sizes(holes)
    return mask | np.isin(labels, np.flatnonzero(sizes < max_pixels) + 1) if len(sizes) else mask
