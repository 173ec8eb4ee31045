"""Sample QC: whether a generated pair is fit to train a detector on, and why not.

A sample is rejected for
- `empty_mask`: its mask is empty (it would teach "no defect here" with an anomaly image);
- `off_object`: more than `max_off_object` of its mask lies outside the object (objects on a background, where the
  run conditions on backgrounds whose object masks it keeps);
- `mask_area`: its mask's area lies outside the range of the training masks' areas, widened by `area_margin` on
  each side (a mask far larger than any real defect marks what is not a defect);
- `branch_disagreement`: the two branches drew different things inside the mask (mean |I - I_a| there above
  `max_disagreement`), so the mask may miss the anomaly drawn in I.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dualanodiff.data import load_mask, load_source, resized_mask
from dualanodiff.errors import DataError
from dualanodiff.generation.backgrounds import BackgroundBank
from dualanodiff.generation.settings import GenerateSettings
from dualanodiff.training.run import Run

REASONS = ("empty_mask", "off_object", "mask_area", "branch_disagreement")


def training_mask_areas(run: Run) -> list[float] | None:
    """The area fractions of the run's training masks at its working resolution (None: the data set is gone)."""
    settings = run.settings
    try:
        samples = load_source(settings.data_root, settings.layout).anomaly_samples(settings.object, settings.anomaly)
    except DataError:
        return None
    trained = set(run.split()["train"])
    masks = [resized_mask(load_mask(sample.mask_path), settings.working_side) for sample in samples
             if sample.name in trained]
    return [float(mask.mean()) for mask in masks] or None


@dataclass(frozen=True)
class QualityGate:
    area_range: tuple[float, float] | None  # None: no training masks to compare with
    max_off_object: float
    max_disagreement: float
    backgrounds: BackgroundBank | None  # the object masks of the backgrounds the samples use

    @classmethod
    def for_run(cls, run: Run, settings: GenerateSettings, backgrounds: BackgroundBank | None) -> QualityGate:
        areas = training_mask_areas(run)
        area_range = (min(areas) / settings.qc_area_margin, max(areas) * settings.qc_area_margin) if areas else None
        return cls(area_range, settings.qc_max_off_object, settings.qc_max_disagreement, backgrounds)

    def describe(self) -> dict[str, Any]:
        """The gate's figures, as a GEN's meta.json records them."""
        return {"area_range": list(self.area_range) if self.area_range else None,
                "max_off_object": self.max_off_object if self.backgrounds is not None else None,
                "max_disagreement": self.max_disagreement}

    def reason(self, mask: np.ndarray, record: dict[str, Any]) -> str | None:
        """Why the sample is rejected (one of REASONS), or None when it passes."""
        if not mask.any():
            return "empty_mask"
        if self.backgrounds is not None and "background" in record:
            outside = self.backgrounds.outside_object(record["background"])
            # An object mask that marks nothing (a texture, or a segmenter that found no object) says nothing.
            if outside.shape == mask.shape and not outside.all() and \
                    (mask & outside).sum() > self.max_off_object * mask.sum():
                return "off_object"
        low, high = self.area_range or (0.0, 1.0)
        if not low <= record["mask_area"] <= high:
            return "mask_area"
        if record.get("branch_agreement") is not None and record["branch_agreement"] > self.max_disagreement:
            return "branch_disagreement"
        return None
