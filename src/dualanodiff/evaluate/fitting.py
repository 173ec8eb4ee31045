"""The fixed training schedule shared by the downstream networks, and batched prediction.

No checkpoint is chosen on the test set (the leak of the released evaluation code): a network trains for a fixed
number of epochs with Adam, the learning rate multiplied by 0.2 at 80% and again at 90% of the steps (DRAEM's
schedule), and the last weights are the ones tested. Augmentation is light and photometric only: per image,
brightness and contrast each scaled by a factor in [0.9, 1.1] (no flips or rotations, since some anomaly types of
MVTec AD, e.g. a flipped metal nut or a misplaced transistor, are defined by orientation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TypeVar

import numpy as np
import torch
from torch import nn

from dualanodiff.errors import UserError
from dualanodiff.evaluate.imaging import batches, imagenet_normalize, to_tensor
from dualanodiff.progress import progress

JITTER = 0.1
Built = TypeVar("Built")


@dataclass(frozen=True)
class Schedule:
    epochs: int
    batch_size: int
    learning_rate: float

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be at least 1")
        if not self.learning_rate > 0:
            raise UserError(f"--learning-rate {self.learning_rate}: must be positive")

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "optimizer": "Adam", "lr_decay": "x0.2 at 80% and 90% of the steps",
                "augmentation": f"brightness and contrast x U({1 - JITTER}, {1 + JITTER})",
                "checkpoint": "last (no selection on the test set)"}


def _jitter(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per-image brightness and contrast factors in [1 - JITTER, 1 + JITTER] on [0, 1] images."""
    count = batch.shape[0]

    def factors() -> torch.Tensor:
        values = 1 + (torch.rand(count, 1, 1, 1, generator=generator) * 2 - 1) * JITTER
        return values.to(batch.device)

    mean = batch.mean(dim=(1, 2, 3), keepdim=True)
    return ((batch - mean) * factors() + mean * factors()).clamp_(0, 1)


def _inputs(images: np.ndarray, device: torch.device, normalize: bool,
            generator: torch.Generator | None = None) -> torch.Tensor:
    batch = to_tensor(images, device)
    if generator is not None:
        batch = _jitter(batch, generator)
    return imagenet_normalize(batch) if normalize else batch


def seeded(seed: int, build: Callable[[], Built]) -> Built:
    """`build()` with torch's global generator set to `seed`, so that the seed fixes a network's initial weights
    too: torch seeds that generator afresh in every process, and without this the same seed trained a different
    network each run (one croppaste seed read 67.4 and 91.1 pixel AP)."""
    torch.manual_seed(seed)
    return build()


def train(model: nn.Module, images: np.ndarray, targets: np.ndarray,
          loss_function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], schedule: Schedule, *, seed: int,
          device: torch.device, normalize: bool, description: str) -> list[float]:
    """Train `model` on uint8 (N, H, W, 3) images and their targets; returns the mean loss of each epoch."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    order_rng = np.random.default_rng(seed)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=schedule.learning_rate)
    steps_per_epoch = -(-len(images) // schedule.batch_size)
    total = schedule.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [int(0.8 * total), int(0.9 * total)], gamma=0.2)
    epoch_losses = []
    bar = progress(total=total, desc=description, unit="step", leave=False)
    for _ in range(schedule.epochs):
        order = order_rng.permutation(len(images))
        losses = []
        for part in batches(len(order), schedule.batch_size):
            chosen = np.sort(order[part])
            inputs = _inputs(images[chosen], device, normalize, generator)
            target = torch.from_numpy(targets[chosen]).to(device)
            loss = loss_function(model(inputs), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            bar.update()
            bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
        epoch_losses.append(float(np.mean(losses)))
    bar.close()
    model.eval()
    return epoch_losses


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray, *, batch_size: int, device: torch.device, normalize: bool,
            output: Callable[[torch.Tensor], torch.Tensor] = lambda logits: logits) -> np.ndarray:
    """`output(model(x))` for every batch of uint8 images, concatenated on the CPU as float32."""
    model.to(device).eval()
    return np.concatenate([output(model(_inputs(images[part], device, normalize))).float().cpu().numpy()
                           for part in batches(len(images), batch_size)])
