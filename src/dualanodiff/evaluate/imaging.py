"""Image plumbing shared by the evaluations: resizing to a square side, batching into tensors, the device."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from PIL import Image

from dualanodiff.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resized_rgb(image: Image.Image | np.ndarray, size: int) -> np.ndarray:
    """A uint8 (size, size, 3) copy of an RGB image (bilinear with antialiasing, so shrinking does not alias)."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    image = image.convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def resized_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A bool (size, size) copy of a mask; nearest neighbour keeps it binary."""
    mask = np.asarray(mask, dtype=bool)
    if mask.shape == (size, size):
        return mask.copy()
    image = Image.fromarray(mask.astype(np.uint8) * 255).resize((size, size), Image.Resampling.NEAREST)
    return np.asarray(image) >= 128


def to_tensor(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [0, 1] on `device`."""
    return torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float().div_(255.0)


def imagenet_normalize(batch: torch.Tensor) -> torch.Tensor:
    """[0, 1] images -> ImageNet-standardised, as torchvision's classifiers expect."""
    mean = torch.tensor(IMAGENET_MEAN, device=batch.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=batch.device).view(1, 3, 1, 1)
    return (batch - mean) / std


def batches(count: int, batch_size: int) -> Iterator[slice]:
    for start in range(0, count, batch_size):
        yield slice(start, min(start + batch_size, count))


def resolve_device(device: str | None) -> torch.device:
    """`device` as given, or CUDA when present, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise UserError(f"--device {device}: not a device name (use cpu or cuda)") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {device}: no CUDA device is available here (use --device cpu)")
    return resolved
