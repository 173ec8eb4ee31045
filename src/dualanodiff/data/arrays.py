"""A data set's images as uint8 arrays at one working side, for the evaluations and the model-free baselines."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from dualanodiff.data.images import load_mask, load_rgb
from dualanodiff.data.pixels import resized_mask, resized_rgb
from dualanodiff.data.samples import AnomalySample


def load_images(paths: Sequence[Path], size: int, description: str) -> np.ndarray:
    """uint8 (N, size, size, 3) images from files (any mode; grey becomes RGB)."""
    images = np.zeros((len(paths), size, size, 3), np.uint8)
    for index, path in enumerate(tqdm(paths, desc=description, leave=False)):
        images[index] = resized_rgb(load_rgb(path), size)
    return images


def load_anomalies(samples: Sequence[AnomalySample], size: int, description: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, size, size, 3) and bool masks (N, size, size) of real anomaly samples."""
    images = np.zeros((len(samples), size, size, 3), np.uint8)
    masks = np.zeros((len(samples), size, size), bool)
    for index, sample in enumerate(tqdm(samples, desc=description, leave=False)):
        image = load_rgb(sample.image_path)
        images[index] = resized_rgb(image, size)
        masks[index] = resized_mask(load_mask(sample.mask_path, image.size), size)
    return images, masks
