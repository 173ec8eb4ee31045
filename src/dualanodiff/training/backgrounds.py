"""The object masks of the training and normal images (BCM cuts backgrounds I_b with them; a window-canvas run
places its windows on the object with them), and the backgrounds. A run keeps them (through `Run`), so that a person
can check them and generation needs no segmenter."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dualanodiff.data import AnomalySample, DataSource, load_pixels, to_pixels, to_uint8
from dualanodiff.masks.objects import FolderMasks, load_object_segmenter, remove_object
from dualanodiff.training.run import Run


@dataclass(frozen=True)
class ObjectMasks:
    training: list[np.ndarray]  # bool, one per training image, at the run's working resolution
    backgrounds: torch.Tensor | None  # the training images' backgrounds (N, 3, R, R) in [-1, 1], when asked for


def prepare_objects(run: Run, source: DataSource, training: list[AnomalySample], training_pixels: torch.Tensor,
                    *, backgrounds: bool) -> ObjectMasks:
    """Object masks of the training and the normal images, saved into the run (with the normal images'
    backgrounds when `backgrounds`), at the run's working resolution."""
    settings = run.settings
    resolution = settings.working_side
    normal_paths = source.normal_train(settings.object)
    normal_images = list(to_uint8(load_pixels(normal_paths, resolution)))
    training_images = list(to_uint8(training_pixels))
    if settings.object_masks is not None:
        folder = FolderMasks(settings.object_masks, Path(settings.data_root) / settings.object)
        training_masks = [folder.mask_for(sample.image_path, resolution) for sample in training]
        normal_masks = [folder.mask_for(path, resolution) for path in normal_paths]
    else:
        segmenter = load_object_segmenter(settings.object_segmenter).fit(normal_images)
        training_masks = [segmenter(image) for image in training_images]
        normal_masks = [segmenter(image) for image in normal_images]
    for kind, paths, masks in (("anomaly", [sample.image_path for sample in training], training_masks),
                               ("normal", normal_paths, normal_masks)):
        for path, mask in zip(paths, masks, strict=True):
            run.save_object_mask(kind, path.stem, mask)
    if not backgrounds:
        return ObjectMasks(training_masks, None)
    for path, background in zip(normal_paths, remove_object(normal_images, normal_masks), strict=True):
        run.save_background(path.stem, background)
    return ObjectMasks(training_masks, to_pixels(remove_object(training_images, training_masks)))
