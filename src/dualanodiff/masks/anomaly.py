"""Anomaly masks for generated samples (SPEC section 4), and the figures that say how much to trust them.

- `threshold` (default): the anomaly part I_a is black outside the anomaly, so its bright pixels, and its dark ones
  that match the image I, cleaned up at the scale of each defect, are the mask. Needs no weights.
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
from dualanodiff.masks.components import component_sizes
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


CROSS = ndimage.generate_binary_structure(2, 1)
HALF_COVERAGE = 0.5  # a drawn defect's edge: where it covers half the pixel


def speck_pixels(min_pixels: float, side: int) -> float:
    """The smallest kept component at this image side: `min_pixels` at 64 px, growing with the fourth root of the
    side (16 at 1024 px), so a 6 px dot survives at any size while single-pixel noise does not."""
    return min_pixels * (side / 64) ** 0.25


def _open_by_thickness(mask: np.ndarray, radius: int) -> np.ndarray:
    """Open each component with `radius`, or less for a thin one: at most half its depth (its largest inner taxicab
    distance, about half its width; a component survives any opening below its depth). So the opening trims a
    blob's ragged edge but never erases a thin, long scratch, which one radius for the whole image did."""
    labels, count = ndimage.label(mask, CROSS)
    if not count or radius <= 0:
        return mask
    depth = ndimage.distance_transform_cdt(np.pad(mask, 1), metric="taxicab")[1:-1, 1:-1]
    thickness = ndimage.maximum(depth, labels, np.arange(1, count + 1)).astype(int)
    radii = np.minimum(radius, (thickness - 1) // 2)
    opened = np.zeros_like(mask)
    for r in np.unique(radii):
        group = np.isin(labels, np.flatnonzero(radii == r) + 1)
        opened |= ndimage.binary_opening(group, CROSS, iterations=int(r)) if r > 0 else group
    return opened


def _clean(mask: np.ndarray, *, radius: int, min_pixels: float, relative_area: float = 0.1) -> np.ndarray:
    """Close small gaps, open by thickness, drop specks and fill holes. Specks are components under `min_pixels`,
    and those under 4 `min_pixels` that are also under `relative_area` of the largest (a small model leaves bright
    specks at the image's corners; a real second defect, larger than that, stays however small next to the first)."""
    if radius > 0:
        mask = ndimage.binary_closing(mask, CROSS, iterations=radius)
    labels, sizes = component_sizes(_open_by_thickness(mask, radius))
    specks = (sizes < min_pixels) | ((sizes < 4 * min_pixels) & (sizes < relative_area * sizes.max(initial=0)))
    return ndimage.binary_fill_holes(np.isin(labels, np.flatnonzero(~specks) + 1))


@dataclass
class ThresholdSegmenter:
    """Mask = the anomaly part's bright pixels, or its dark ones that match the image, then `_clean`.

    With a = brightness of the anomaly part I_a, i = that of the image I (largest channel, 0..1, optionally
    blurred), d = largest channel of |I - I_a| and b = median of a (I_a's black: an anomaly covers less than half
    the image), a pixel is anomaly where

    - bright: a >= max(`threshold`, b + `margin`) and a >= i / 2. The threshold, raised above b, keeps a
      background the model drew dark grey out of the mask; the ratio trims soft edges at the drawn edge, since
      I_a fades to black there (I_a ~ coverage x I) while I does not;
    - or dark: b + `dark_margin` <= a < `threshold` and d <= `agreement`, by a 3x3 majority. A defect darker
      than `threshold` is black to brightness alone; but I_a is still above its own black there and equals I,
      while outside the anomaly I_a is black and differs from I wherever the object is not black itself. A
      black part of the scene (I and I_a both at b) stays out; the majority vote drops chance agreements of the
      two branches' noise there. `dark_margin` None turns this route off.

    radius caps the closing and opening in pixels (None: one pixel per 128 px of image side, at least 1); a thin
    component gets a smaller opening (`_open_by_thickness`). min_pixels is the smallest kept component at a 64 px
    side (see `speck_pixels`; it replaces `min_area`, a fraction of the image, 0.002, that erased 20 px dots at
    512 px). The dark route needs I_a's black to be darker than the defect by `dark_margin`.
    """

    threshold: float = 0.12
    margin: float = 0.1
    blur_sigma: float = 0.0  # a blur suppresses noise but grows the mask by about its width
    radius: int | None = None
    min_pixels: float = 8.0
    dark_margin: float | None = 0.02
    agreement: float = 0.03
    needs_attention: bool = False

    def __call__(self, image: np.ndarray, anomaly_part: np.ndarray,
                 attention: np.ndarray | None = None) -> np.ndarray:
        part = self._brightness(anomaly_part)
        shown = self._brightness(image)
        black = float(np.median(part))
        mask = (part >= max(self.threshold, black + self.margin)) & (part >= HALF_COVERAGE * shown)
        if self.dark_margin is not None:
            difference = np.abs(image.astype(np.float32) - anomaly_part.astype(np.float32)).max(axis=2) / 255
            dark = (part >= black + self.dark_margin) & (part < self.threshold) & (difference <= self.agreement)
            mask |= ndimage.uniform_filter(dark.astype(np.float32), 3) > 0.5
        side = image.shape[0]
        radius = self.radius if self.radius is not None else max(1, side // 128)
        return _clean(mask, radius=radius, min_pixels=speck_pixels(self.min_pixels, side))

    def _brightness(self, pixels: np.ndarray) -> np.ndarray:
        """Largest channel on a 0..1 scale: a saturated red defect is as bright as a white one."""
        brightness = pixels.astype(np.float32).max(axis=2) / 255
        return ndimage.gaussian_filter(brightness, self.blur_sigma) if self.blur_sigma > 0 else brightness


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
    """Mask = (mean cross-attention to the anomaly token >= threshold), Otsu's threshold when none is given, then
    `_clean` (min_pixels as in `ThresholdSegmenter`)."""

    threshold: float | None = None
    radius: int = 1
    min_pixels: float = 8.0  # at a 64 px side, see `speck_pixels`
    needs_attention: bool = True

    def __call__(self, image: np.ndarray, anomaly_part: np.ndarray,
                 attention: np.ndarray | None = None) -> np.ndarray:
        if attention is None:
            raise ValueError("the attention mask method needs the cross-attention map")
        threshold = self.threshold if self.threshold is not None else otsu_threshold(attention)
        return _clean(attention >= threshold, radius=self.radius,
                      min_pixels=speck_pixels(self.min_pixels, attention.shape[0]))


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
