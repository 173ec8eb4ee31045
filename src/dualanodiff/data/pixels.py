"""Images as the models see them: float tensors (N, 3, H, W) in [-1, 1], and back to uint8 HxWx3 arrays."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dualanodiff.data.images import load_rgb


def resize_image(image: Image.Image, resolution: int) -> np.ndarray:
    """A square uint8 HxWx3 array, resized with Lanczos (a non-square image is stretched, as training does)."""
    return np.asarray(image.convert("RGB").resize((resolution, resolution), Image.Resampling.LANCZOS))


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
    return to_pixels([resize_image(load_rgb(path), resolution) for path in paths])
