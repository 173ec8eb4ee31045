"""The frozen base: a text-to-image latent diffusion model in diffusers format.

Either a Stable Diffusion 1.x / 2.x checkpoint (a local diffusers folder or a hub id) or the tiny preset's own small
model, which uses the same folder layout (unet/, vae/, text_encoder/, tokenizer/, scheduler/) so that one loader
serves both. Weights load from safetensors only: a model folder is untrusted input and pickles can run code.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from torch import nn
from transformers import CLIPTextModel, CLIPTokenizer

from dualanodiff.errors import ModelError, first_line
from dualanodiff.io import ordinary_permissions

SUBFOLDERS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


class SpaceToDepthCodec(nn.Module, ConfigMixin):
    """An exact, parameter-free latent space: each factor x factor pixel block becomes one latent vector.

    The tiny preset diffuses in it instead of a VAE's latent space: it costs nothing, loses nothing, and needs no
    pretrained weights.
    """

    config_name = "config.json"

    @register_to_config
    def __init__(self, factor: int = 4, in_channels: int = 3):
        super().__init__()

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.pixel_unshuffle(pixels, self.config.factor)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(latents, self.config.factor)


class LatentCodec(nn.Module):
    """Pixels in [-1, 1] <-> the latents the UNet works on, for an AutoencoderKL or a SpaceToDepthCodec."""

    def __init__(self, model: AutoencoderKL | SpaceToDepthCodec):
        super().__init__()
        self.model = model

    @property
    def is_vae(self) -> bool:
        return isinstance(self.model, AutoencoderKL)

    @property
    def downscale(self) -> int:
        if self.is_vae:
            return 2 ** (len(self.model.config.block_out_channels) - 1)
        return self.model.config.factor

    def _scale_and_shift(self) -> tuple[float, float]:
        config = self.model.config
        return config.scaling_factor, getattr(config, "shift_factor", None) or 0.0

    @torch.no_grad()
    def encode_distribution(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) of the latent distribution; a training step samples mean + std * noise."""
        if not self.is_vae:
            latents = self.model.encode(pixels)
            return latents, torch.zeros_like(latents)
        scale, shift = self._scale_and_shift()
        distribution = self.model.encode(pixels.to(self.model.dtype)).latent_dist
        return (distribution.mean - shift) * scale, distribution.std * scale

    @torch.no_grad()
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """Deterministic latents (the distribution's mean)."""
        return self.encode_distribution(pixels)[0]

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        if not self.is_vae:
            return self.model.decode(latents)
        scale, shift = self._scale_and_shift()
        return self.model.decode((latents / scale + shift).to(self.model.dtype)).sample


@dataclass
class BaseModel:
    """The frozen components of a latent text-to-image diffusion model."""

    unet: UNet2DConditionModel
    codec: LatentCodec
    text_encoder: CLIPTextModel
    tokenizer: CLIPTokenizer
    scheduler_config: dict[str, Any]
    name: str

    @property
    def resolution(self) -> int:
        """The image side in pixels the UNet was made for."""
        return self.unet.config.sample_size * self.codec.downscale

    @property
    def prediction_type(self) -> str:
        return self.scheduler_config.get("prediction_type", "epsilon")

    def check_resolution(self, resolution: int) -> None:
        """Refuse an image side the codec and the UNet's down-sampling levels cannot divide."""
        multiple = self.codec.downscale * 2 ** (len(self.unet.config.block_out_channels) - 1)
        if resolution % multiple:
            raise ModelError(f"--resolution {resolution}: this base model needs a multiple of {multiple} pixels "
                             f"(e.g. {max(multiple, resolution // multiple * multiple)})")

    def save_pretrained(self, directory: str | Path) -> Path:
        directory = Path(directory)
        self.unet.save_pretrained(directory / "unet", safe_serialization=True)
        if self.codec.is_vae:
            self.codec.model.save_pretrained(directory / "vae", safe_serialization=True)
        else:
            self.codec.model.save_config(directory / "vae")
        self.text_encoder.save_pretrained(directory / "text_encoder", safe_serialization=True)
        self.tokenizer.save_pretrained(directory / "tokenizer")
        DDPMScheduler.from_config(self.scheduler_config).save_pretrained(directory / "scheduler")
        ordinary_permissions(directory)
        return directory


def _hub_hint(name: str) -> str:
    return (f"base model {name!r} is not on this machine and the model hub cannot be reached: on a connected "
            f"machine run `huggingface-cli download {name}` (or copy a diffusers folder with unet/, vae/, "
            "text_encoder/, tokenizer/, scheduler/ in safetensors) and pass --base-model /path/to/that/folder")


def _load_components(source: str, **hub_options: Any) -> BaseModel:
    options = {"use_safetensors": True, **hub_options}
    vae_config = AutoencoderKL.load_config(source, subfolder="vae", **hub_options)
    if vae_config.get("_class_name") == SpaceToDepthCodec.__name__:
        codec_model: AutoencoderKL | SpaceToDepthCodec = SpaceToDepthCodec.from_config(vae_config)
    else:
        codec_model = AutoencoderKL.from_pretrained(source, subfolder="vae", **options)
    return BaseModel(
        unet=UNet2DConditionModel.from_pretrained(source, subfolder="unet", **options),
        codec=LatentCodec(codec_model),
        text_encoder=CLIPTextModel.from_pretrained(source, subfolder="text_encoder", **options),
        tokenizer=CLIPTokenizer.from_pretrained(source, subfolder="tokenizer", **hub_options),
        scheduler_config=dict(DDPMScheduler.load_config(source, subfolder="scheduler", **hub_options)),
        name=source,
    )


def load_base_model(name_or_path: str | Path) -> BaseModel:
    """Load a base model from a local diffusers folder or a hub id (cached copy first, then the hub)."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"{path}: a base model must be a diffusers folder, not a file")
        missing = [sub for sub in SUBFOLDERS if not (path / sub).is_dir()]
        if missing:
            raise ModelError(f"{path}: not a diffusers model folder (missing {', '.join(m + '/' for m in missing)})")
        try:
            return _load_components(str(path))
        except (OSError, ValueError) as error:
            raise ModelError(f"{path}: cannot load the base model: {first_line(error)}") from None
    name = str(name_or_path)
    if name.startswith((".", "/", "~")) or name.count("/") != 1:
        raise ModelError(f"{name}: no such folder, and not a hub id of the form owner/model")
    try:
        return _load_components(name, local_files_only=True)
    except OSError:
        if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
            raise ModelError(_hub_hint(name)) from None
    try:
        return _load_components(name)
    except OSError as error:
        text = str(error).lower()
        if "safetensors" in text and "connect" not in text:
            raise ModelError(f"{name}: {first_line(error)}") from None
        raise ModelError(_hub_hint(name)) from None


def move_frozen(modules: Iterable[nn.Module], device: torch.device | str, dtype: torch.dtype) -> None:
    """Move frozen modules to `device`, casting only when the dtype changes (diffusers warns on any cast of a
    UNet, even to the dtype it has)."""
    for module in modules:
        module.to(device, **({"dtype": dtype} if dtype != torch.float32 else {}))
