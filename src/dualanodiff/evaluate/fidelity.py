"""How generated pairs sit next to the real ones, in three figures a person can check on a contact sheet:

- grid score: for each of the `period` phases of the columns (and of the rows), the mean absolute difference across
  that phase's pixel boundaries; the largest over their mean, the larger of columns and rows. A model whose latent
  pixels cover 4 x 4 image pixels and does not join them smoothly leaves a 4-px grid: real photos score about 1.0.
- off-object share: of all mask pixels, the share outside the object (objects on a background; real masks ~0.5 %).
- area ratio: the median mask area of the generated pairs over that of the real masks of the same type.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

GRID_PERIOD = 4  # the tiny preset's space-to-depth factor


def grid_score(images: Sequence[np.ndarray], period: int = GRID_PERIOD) -> float:
    """The grid score of uint8 HxWx3 images (see the module docstring)."""
    scores = []
    for axis in (1, 0):  # differences between neighbouring columns, then rows
        phases = np.zeros(period)
        for image in images:
            difference = np.abs(np.diff(image.astype(np.float32), axis=axis)).mean(axis=(1 - axis, 2))
            phases += [difference[phase::period].mean() for phase in range(period)]
        scores.append(phases.max() / phases.mean())
    return float(max(scores))


def off_object_share(masks: Sequence[np.ndarray], object_masks: Sequence[np.ndarray]) -> float:
    """Of all mask pixels, the share outside their image's object mask (0 when the masks are empty)."""
    total = sum(int(mask.sum()) for mask in masks)
    outside = sum(int((mask & ~objects).sum()) for mask, objects in zip(masks, object_masks, strict=True))
    return outside / total if total else 0.0


def area_ratio(generated: Sequence[np.ndarray], real: Sequence[np.ndarray]) -> float:
    """Median area fraction of the generated masks over that of the real ones."""
    return float(np.median([mask.mean() for mask in generated]) / np.median([mask.mean() for mask in real]))
