"""BCM's training inputs: the object masks of the training and normal images, and the backgrounds I_b cut with
them. A BCM run keeps them (through `Run`), so that a person can check them and generation needs no data set."""

from __future__ import annotations

from pathlib import Path

import torch

from dualanodiff.data import AnomalySample, DataSource, load_pixels, to_pixels, to_uint8
from dualanodiff.masks.objects import FolderMasks, load_object_segmenter, remove_object
from dualanodiff.training.run import Run


def prepare_backgrounds(run: Run, source: DataSource, training: list[AnomalySample],
                        training_pixels: torch.Tensor) -> torch.Tensor:
    """Object masks of the training images and of the normal images, saved into the run with the normal images'
    backgrounds; returns the training images' backgrounds as (N, 3, R, R) in [-1, 1]."""
    settings = run.settings
    resolution = settings.resolution
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
    for path, background in zip(normal_paths, remove_object(normal_images, normal_masks), strict=True):
        run.save_background(path.stem, background)
    return to_pixels(remove_object(training_images, training_masks))
