"""Anomaly masks for generated samples (SPEC section 4), and the figures that say how much to trust them.

- `threshold` (default): the anomaly part I_a is black outside the anomaly, so its brightness, thresholded and cleaned
  up morphologically, is the mask. Needs no weights.
- `attention`: where the anomaly branch's cross-attention looks at the anomaly token, averaged over denoising steps
  and layers (the paper's second route, which its released code never built).
- Anything else: `module.path:factory`, a factory returning a `Segmenter` (for example a U^2-Net or SAM wrapper).

Per sample, `mask_figures` records the mask's area fraction and the branch agreement: mean |I - I_a| over the mask
on a 0..1 scale. I_a should equal I inside the mask; a large value means the two branches drew different things
and the mask may miss the anomaly drawn in I.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from scipy import ndimage

from dualanodiff.errors import UserError
from dualanodiff.masks.components import keep_components
from dualanodiff.plugins import load_plugin


@runtime_checkable
class Segmenter(Protocol):
    """Turns one generated sample into its anomaly mask.

    `image` and `anomaly_part` are uint8 HxWx3; `attention` is the anomaly token's cross-attention map (HxW, 0..1)
    when `needs_attention` is true, else None. Returns a bool HxW mask.
    """

    needs_attention: bool

    def __call__(self, image: np.ndarray, anomaly_part: np.ndarray,
                 attention: np.ndarray | None) -> np.ndarray: ...


def _clean(mask: np.ndarray, *, radius: int, min_area: float, relative_area: float = 0.1) -> np.ndarray:
    """Close small gaps, fill holes, and drop specks: components smaller than `min_area` of the image or than
    `relative_area` of the largest component (a small model leaves bright specks at the image's corners)."""
    if radius > 0:
        structure = ndimage.generate_binary_structure(2, 1)
        mask = ndimage.binary_closing(mask, structure, iterations=radius)
        mask = ndimage.binary_opening(mask, structure, iterations=radius)
    return keep_components(ndimage.binary_fill_holes(mask), min_area * mask.size, relative_area)


@dataclass
class ThresholdSegmenter:
    """Mask = (brightness of the anomaly part >= threshold), then `_clean`.

    Brightness is the largest channel, on a 0..1 scale (optionally blurred). The threshold is the larger of
    `threshold` and the anomaly part's background level (its median: an anomaly covers less than half the image)
    plus `margin`, so that a background the model drew dark grey instead of black does not become mask.
    radius is the morphological closing/opening radius in pixels (None: one pixel per 128 px of image side, at
    least 1); min_area is the smallest kept component, as a fraction of the image.
    """

    threshold: float = 0.12
    margin: float = 0.1
    blur_sigma: float = 0.0  # a blur suppresses noise but grows the mask by about its width
    radius: int | None = None
    min_area: float = 0.002
    needs_attention: bool = False

    def __call__(self, image: np.ndarray, anomaly_part: np.ndarray,
                 attention: np.ndarray | None = None) -> np.ndarray:
        brightness = anomaly_part.astype(np.float32).max(axis=2) / 255
        if self.blur_sigma > 0:
            brightness = ndimage.gaussian_filter(brightness, self.blur_sigma)
        threshold = max(self.threshold, float(np.median(brightness)) + self.margin)
        radius = self.radius if self.radius is not None else max(1, image.shape[0] // 128)
        return _clean(brightness >= threshold, radius=radius, min_area=self.min_area)


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """The threshold that maximises the between-class variance of `values` (in 0..1)."""
    histogram, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    weights = histogram.astype(np.float64) / max(histogram.sum(), 1)
    centres = (edges[:-1] + edges[1:]) / 2
    below = np.cumsum(weights)
    mean_below = np.cumsum(weights * centres)
    total_mean = mean_below[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total_mean * below - mean_below) ** 2 / (below * (1 - below))
    between[~np.isfinite(between)] = 0
    return float(edges[int(np.argmax(between)) + 1])


@dataclass
class AttentionSegmenter:
    """Mask = (mean cross-attention to the anomaly token >= threshold), Otsu's threshold when none is given."""

    threshold: float | None = None
    radius: int = 1
    min_area: float = 0.002
    needs_attention: bool = True

    def __call__(self, image: np.ndarray, anomaly_part: np.ndarray,
                 attention: np.ndarray | None = None) -> np.ndarray:
        if attention is None:
            raise ValueError("the attention mask method needs the cross-attention map")
        threshold = self.threshold if self.threshold is not None else otsu_threshold(attention)
        return _clean(attention >= threshold, radius=self.radius, min_area=self.min_area)


BUILT_IN = {"threshold": ThresholdSegmenter, "attention": AttentionSegmenter}


def load_segmenter(method: str) -> Segmenter:
    """A built-in method by name, or `module.path:factory` for a segmenter of the user's."""
    segmenter = load_plugin(method, BUILT_IN, what="mask method")
    if not isinstance(segmenter, Segmenter):
        raise UserError(f"mask method {method!r}: its factory must return an object with a needs_attention "
                        "attribute and a __call__(image, anomaly_part, attention) method")
    return segmenter


def mask_figures(image: np.ndarray, anomaly_part: np.ndarray, mask: np.ndarray) -> dict[str, float | None]:
    """Mask area fraction, and branch agreement: mean |I - I_a| inside the mask on a 0..1 scale (None if empty)."""
    area = float(mask.mean())
    if not mask.any():
        return {"mask_area": 0.0, "branch_agreement": None}
    difference = np.abs(image.astype(np.float32) - anomaly_part.astype(np.float32)) / 255
    return {"mask_area": area, "branch_agreement": float(difference[mask].mean())}
