"""The few-shot training examples, loaded once: the anomaly images, their masks and their anomaly parts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dualanodiff.data.images import load_mask, load_rgb
from dualanodiff.data.pixels import resized_mask, resized_rgb, to_pixels
from dualanodiff.data.samples import AnomalySample
from dualanodiff.errors import DataError


@dataclass(frozen=True)
class TrainingExamples:
    """Every sample resized to a square (a non-square image is stretched, as the paper's training does):

        images  (N, 3, R, R) in [-1, 1]
        masks   (N, 1, R, R) in {0, 1} (binarised at 50 %, then nearest neighbour)
        parts   (N, 3, R, R) in [-1, 1]: image x mask computed in [0, 1], so -1 (black) outside the mask
    """

    samples: list[AnomalySample]
    images: torch.Tensor
    masks: torch.Tensor
    parts: torch.Tensor

    def __len__(self) -> int:
        return len(self.samples)


def _load(sample: AnomalySample, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    image = load_rgb(sample.image_path)
    mask = load_mask(sample.mask_path, image.size)
    pixels = to_pixels(resized_rgb(image, resolution)[None])[0]
    mask = resized_mask(mask, resolution)
    if not mask.any():
        raise DataError(f"{sample.mask_path}: the anomaly vanishes when the mask is resized to "
                        f"{resolution}x{resolution}; use a higher resolution")
    return pixels, torch.from_numpy(mask[None].astype(np.float32))


def load_training_examples(samples: list[AnomalySample], resolution: int) -> TrainingExamples:
    if not samples:
        raise DataError("too few images to train: no anomaly samples given")
    images, masks = (torch.stack(column) for column in zip(*(_load(s, resolution) for s in samples), strict=True))
    parts = (((images + 1) / 2) * masks) * 2 - 1
    return TrainingExamples(list(samples), images, masks, parts)
