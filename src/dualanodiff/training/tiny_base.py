"""The tiny preset's base model: a small UNet trained on the object's normal images, cached and reused.

No pretrained text-to-image model can be downloaded on a machine without network, so the tiny preset first teaches
its own small base (model/tiny.py) what the object looks like, then fine-tunes the dual branches exactly as the sd15
preset does. The base is cached under $DUALANODIFF_CACHE (default ~/.cache/dualanodiff), keyed by the normal
images' content and every setting, so later runs on the same object reuse it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from torch import nn

from dualanodiff.data import load_pixels, to_uint8
from dualanodiff.errors import DataError
from dualanodiff.io import write_json
from dualanodiff.masks.objects import load_object_segmenter
from dualanodiff.model.base import BaseModel
from dualanodiff.model.dual import diffusion_target
from dualanodiff.model.tiny import build_tiny_base
from dualanodiff.training.loop import fit, flip_variants, make_accelerator
from dualanodiff.training.run import CHECKPOINTS_FOLDER
from dualanodiff.training.settings import TinyBaseSettings
from dualanodiff.training.windows import NormalWindows

UNCONDITIONAL_RATE = 0.1  # prompts dropped to "" so that classifier-free guidance has an unconditional model
EMA_DECAY = 0.999
COMPLETE_MARK = "base.json"
MODEL_FOLDER = "model"
ARCHITECTURE_VERSION = 3  # part of the cache key: a change to model/tiny.py or to its images' resize invalidates
# cached bases (3: bilinear, as every working-resolution image, where it was Lanczos)


def cache_root() -> Path:
    return Path(os.environ.get("DUALANODIFF_CACHE", Path.home() / ".cache" / "dualanodiff")).expanduser()


class BaseDenoisingLoss(nn.Module):
    """The plain diffusion loss of the base UNet, conditioned on the object prompt or, sometimes, on ""."""

    def __init__(self, base: BaseModel, prompt: str):
        super().__init__()
        self.unet = base.unet
        self.scheduler = DDPMScheduler.from_config(base.scheduler_config)
        ids = base.tokenizer([prompt, ""], padding="max_length", max_length=base.tokenizer.model_max_length,
                             return_tensors="pt").input_ids
        with torch.no_grad():
            self.register_buffer("prompt_embeddings", base.text_encoder(ids)[0])

    def forward(self, clean: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor,
                unconditional: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        noisy = self.scheduler.add_noise(clean, noise, timesteps)
        target = diffusion_target(self.scheduler, clean, noise, timesteps)
        text = self.prompt_embeddings[unconditional.long()]
        loss = F.mse_loss(self.unet(noisy, timesteps, encoder_hidden_states=text).sample.float(), target.float())
        return loss, loss.detach()[None]


def pretrain_tiny_base(normal_images: list[Path], folder: Path, settings: TinyBaseSettings) -> Path:
    """Train a tiny base on `normal_images` into `folder` (resumable); returns the model folder."""
    if not normal_images:
        raise DataError("the tiny preset needs the object's normal training images to learn the object; none found")
    settings.validate()
    accelerator = make_accelerator("auto")
    base = build_tiny_base(settings.resolution, settings.seed)
    draw_clean = _clean_latents(base, normal_images, settings)
    timesteps = base.scheduler_config["num_train_timesteps"]
    model = BaseDenoisingLoss(base, settings.prompt).to(accelerator.device)
    batch_size = settings.batch_size

    def draw_batch(generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        clean = draw_clean(batch_size, generator)
        noise = torch.randn(clean.shape, generator=generator)
        steps_drawn = torch.randint(0, timesteps, (batch_size,), generator=generator)
        unconditional = torch.rand(batch_size, generator=generator) < UNCONDITIONAL_RATE
        return tuple(x.to(accelerator.device) for x in (clean, noise, steps_drawn, unconditional))

    _, ema = fit(accelerator, model, draw_batch, run_dir=folder, steps=settings.steps, lr=settings.lr,
                 seed=settings.seed, checkpoint_every=max(settings.steps // 10, 1), keep_checkpoints=1,
                 loss_columns=(), title="pre-training the tiny base", ema_decay=EMA_DECAY)
    ema.copy_to(param for param in model.parameters() if param.requires_grad)
    model_dir = folder / MODEL_FOLDER
    if accelerator.is_main_process:  # under `accelerate launch` every process trained the same weights
        base.save_pretrained(model_dir)
        shutil.rmtree(folder / CHECKPOINTS_FOLDER, ignore_errors=True)
    accelerator.wait_for_everyone()
    return model_dir


def _clean_latents(base: BaseModel, normal_images: list[Path],
                   settings: TinyBaseSettings) -> Callable[[int, torch.Generator], torch.Tensor]:
    """draw(batch_size, generator): clean latents of whole normal images (image canvas), or of windows of them cut
    afresh for every batch (window canvas; the tiny base's codec makes encoding free)."""
    flips = (settings.flip_horizontal, settings.flip_vertical)
    if settings.working_resolution is None:
        pixels = flip_variants(load_pixels(normal_images, settings.resolution), *flips)
        latents = base.codec.encode(pixels.flatten(0, 1))
        return lambda batch_size, generator: latents[torch.randint(len(latents), (batch_size,), generator=generator)]
    images = to_uint8(load_pixels(normal_images, settings.working_resolution))
    segmenter = load_object_segmenter("border").fit(list(images))
    object_masks = [segmenter(image) for image in images]
    windows = NormalWindows(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), object_masks, flips)
    return lambda batch_size, generator: base.codec.encode(windows.draw(batch_size, settings.resolution, generator))


def _fingerprint(normal_images: list[Path], settings: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for path in normal_images:
        digest.update(path.name.encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def cached_tiny_base(normal_images: list[Path], object_name: str, settings: TinyBaseSettings) -> Path:
    """The tiny base for these normal images and settings: from the cache, or pre-trained now and cached."""
    key = {**settings.to_dict(), "architecture": ARCHITECTURE_VERSION}
    folder = cache_root() / "tiny-base" / f"{object_name}-{_fingerprint(normal_images, key)}"
    if (folder / COMPLETE_MARK).is_file():
        print(f"using the cached tiny base {folder}")
        return folder / MODEL_FOLDER
    print(f"pre-training the tiny base on {len(normal_images)} normal images of {object_name!r} "
          f"({settings.steps} steps; cached in {folder} for later runs)")
    model_dir = pretrain_tiny_base(normal_images, folder, settings)
    write_json(folder / COMPLETE_MARK, {"object": object_name, "normal_images": len(normal_images), **key})
    return model_dir
