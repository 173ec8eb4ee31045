"""Stable-Diffusion-shaped base model folders, tiny enough to build and run on a CPU in seconds (tests/ is on
sys.path: `from sd_like import save_sd_like`).

- "sd1": as Stable Diffusion 1.x: a PNDM scheduler config, epsilon prediction, one attention head width for every
  level, a 32-wide text encoder; 16 px images (a 2-level VAE, downscale 2, UNet sample_size 8).
- "sd2": as Stable Diffusion 2.x 768-v: a DDIM scheduler config, v-prediction, `use_linear_projection`,
  `upcast_attention`, per-level `attention_head_dim`, a 64-wide text encoder; 32 px images (a 3-level VAE,
  downscale 4, UNet sample_size 8).

The weights are random; the folders are written by `BaseModel.save_pretrained`, then the scheduler config by the
scheduler class the real checkpoints name (as a downloaded SD folder holds it).
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, PNDMScheduler, UNet2DConditionModel

from dualanodiff.model.base import BaseModel, LatentCodec
from dualanodiff.model.tiny import TinyArchitecture, build_text_encoder, build_tokenizer

_SD_BETAS = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
             "clip_sample": False, "set_alpha_to_one": False, "steps_offset": 1, "skip_prk_steps": True}
SCHEDULERS = {
    "sd1": (PNDMScheduler, {**_SD_BETAS, "prediction_type": "epsilon"}),
    "sd2": (DDIMScheduler, {**_SD_BETAS, "prediction_type": "v_prediction"}),
}
TEXT_WIDTH = {"sd1": 32, "sd2": 64}
RESOLUTION = {"sd1": 16, "sd2": 32}  # what each folder's UNet sample_size x VAE downscale gives
KINDS = tuple(SCHEDULERS)


def _vae(levels: int) -> AutoencoderKL:
    return AutoencoderKL(block_out_channels=(8,) * levels, down_block_types=("DownEncoderBlock2D",) * levels,
                         up_block_types=("UpDecoderBlock2D",) * levels, latent_channels=4, norm_num_groups=4,
                         sample_size=8 * 2 ** (levels - 1), scaling_factor=0.18215)


def _unet(kind: str) -> UNet2DConditionModel:
    if kind == "sd1":
        return UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 32),
                                    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), layers_per_block=1,
                                    attention_head_dim=2, cross_attention_dim=TEXT_WIDTH[kind], norm_num_groups=8)
    return UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64),
                                down_block_types=("CrossAttnDownBlock2D",) * 2,
                                up_block_types=("CrossAttnUpBlock2D",) * 2, layers_per_block=1,
                                attention_head_dim=(2, 4), cross_attention_dim=TEXT_WIDTH[kind], norm_num_groups=8,
                                use_linear_projection=True, upcast_attention=True)


def build_sd_like(kind: str = "sd1", seed: int = 0) -> BaseModel:
    """A fresh SD-shaped base of `kind` ("sd1" or "sd2") with random weights; the same for the same seed."""
    scheduler_class, scheduler_config = SCHEDULERS[kind]
    tokenizer = build_tokenizer()
    text_encoder = build_text_encoder(tokenizer, TinyArchitecture(text_width=TEXT_WIDTH[kind], text_layers=1), seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae, unet = _vae(2 if kind == "sd1" else 3), _unet(kind)
    config = dict(scheduler_class.from_config(scheduler_config).config)
    return BaseModel(unet=unet, codec=LatentCodec(vae), text_encoder=text_encoder, tokenizer=tokenizer,
                     scheduler_config=config, name=f"{kind}-like")


def save_sd_like(directory: str | Path, kind: str = "sd1", seed: int = 0) -> Path:
    """`build_sd_like(kind, seed)` saved as a diffusers folder, its scheduler config in the class SD names."""
    base = build_sd_like(kind, seed)
    directory = base.save_pretrained(directory)
    scheduler_class, _ = SCHEDULERS[kind]
    scheduler_class.from_config(base.scheduler_config).save_pretrained(directory / "scheduler")
    return directory
