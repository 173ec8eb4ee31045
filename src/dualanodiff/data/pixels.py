"""Images as the models see them: float tensors (N, 3, H, W) in [-1, 1], and back to uint8 HxWx3 arrays."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dualanodiff.data.images import binarise, load_rgb


def resized_rgb(image: Image.Image | np.ndarray, size: int,
                resample: Image.Resampling = Image.Resampling.BILINEAR) -> np.ndarray:
    """A uint8 (size, size, 3) copy of an image (a non-square one is stretched, as training does). Bilinear with
    antialiasing by default, so shrinking does not alias. Every image at the working resolution is made with this
    default (training's, the canvas's, the baselines' and the evaluation's alike): a generated pair whose pixels
    are sharper or softer than the real images resized for the detector carries a cue the real defects lack (on the
    real screw, croppaste's own pastes made from Lanczos-sharp images fall from 35.5 to 9.2 pixel AP)."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    image = image.convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), resample)
    return np.asarray(image, dtype=np.uint8)


def resized_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A bool (size, size) copy of a mask; nearest neighbour keeps it binary."""
    mask = np.asarray(mask, dtype=bool)
    if mask.shape == (size, size):
        return mask.copy()
    return binarise(Image.fromarray(mask.astype(np.uint8) * 255).resize((size, size), Image.Resampling.NEAREST))


def to_pixels(images: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
    """uint8 (N,) H x W x 3 -> float (N, 3, H, W) in [-1, 1]."""
    array = np.stack(images) if not isinstance(images, np.ndarray) else images
    # torch.tensor copies: arrays made from PIL images are read-only, which torch.from_numpy warns about.
    return torch.tensor(array).permute(0, 3, 1, 2).float() / 127.5 - 1


def to_uint8(pixels: torch.Tensor) -> np.ndarray:
    """float (N, 3, H, W) in [-1, 1] -> uint8 (N, H, W, 3)."""
    return ((pixels.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def load_pixels(paths: Sequence[Path], resolution: int) -> torch.Tensor:
    """Image files as (N, 3, R, R) in [-1, 1]."""
    return to_pixels([resized_rgb(load_rgb(path), resolution) for path in paths])
