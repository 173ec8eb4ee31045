"""The few-shot training examples as a torch Dataset: the anomaly image, its mask and its anomaly part."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from dualanodiff.data.images import load_mask, load_rgb
from dualanodiff.data.pixels import resize_image, to_pixels
from dualanodiff.data.source import AnomalySample
from dualanodiff.errors import DataError


class AnomalyTrainingSet(Dataset):
    """Every sample loaded once, at construction (few-shot: a handful of images), resized to a square.

    Images are resized with Lanczos, masks (binarised at 50% first) with nearest neighbour, both to
    `resolution` x `resolution` (a non-square image is stretched, as the paper's training does). Item `i` is a
    dict of float32 tensors:

        "image"         3xHxW in [-1, 1]
        "mask"          1xHxW in {0, 1}
        "anomaly_part"  3xHxW in [-1, 1]: image x mask computed in [0, 1], so -1 (black) outside the mask

    With `flip_horizontal` / `flip_vertical` each item is flipped with probability 1/2 (drawn with
    `torch.rand`, so `torch.manual_seed` makes it repeatable), the same flip for all three tensors. Unflipped
    items share memory with the cache: do not modify them in place.
    """

    def __init__(self, samples: list[AnomalySample], resolution: int, *, flip_horizontal: bool = False,
                 flip_vertical: bool = False):
        if not samples:
            raise DataError("too few images to train: no anomaly samples given")
        self.samples = list(samples)
        self.resolution = resolution
        self.flip_horizontal = flip_horizontal
        self.flip_vertical = flip_vertical
        images, masks = zip(*(self._load(sample) for sample in self.samples), strict=True)
        self.images = torch.stack(images)
        self.masks = torch.stack(masks)
        self.parts = (((self.images + 1) / 2) * self.masks) * 2 - 1

    def _load(self, sample: AnomalySample) -> tuple[torch.Tensor, torch.Tensor]:
        size = (self.resolution, self.resolution)
        image = load_rgb(sample.image_path)
        mask = load_mask(sample.mask_path, image.size)
        pixels = to_pixels(resize_image(image, self.resolution)[None])[0]
        mask = np.asarray(Image.fromarray(mask).resize(size, Image.Resampling.NEAREST))
        if not mask.any():
            raise DataError(f"{sample.mask_path}: the anomaly vanishes when the mask is resized to "
                            f"{self.resolution}x{self.resolution}; use a higher resolution")
        return pixels, torch.from_numpy(mask[None].astype(np.float32))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = {"image": self.images[index], "mask": self.masks[index], "anomaly_part": self.parts[index]}
        dims = [dim for dim, enabled in ((-1, self.flip_horizontal), (-2, self.flip_vertical))
                if enabled and torch.rand(()) < 0.5]
        if dims:
            item = {key: value.flip(dims) for key, value in item.items()}
        return item
