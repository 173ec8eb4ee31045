"""The dual-interrelated diffusion model: one frozen UNet, two branches, SAIM between them (SPEC section 2).

The global branch denoises the whole anomaly image I, the anomaly branch the anomaly part I_a = I x M, both in one
interleaved batch ((b f) with f = 2, or 3 with the BCM background stream), at the same timestep with independent
noise. Each branch has its own LoRA on every attention projection of the UNet; the text encoder has one LoRA that
both branches share (peft).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from peft import LoraConfig, inject_adapter_in_model
from torch import nn

from dualanodiff.errors import ModelError
from dualanodiff.model.attention import AttentionStore, DualContext, install_dual_processors
from dualanodiff.model.base import BaseModel
from dualanodiff.model.bcm import BCMForm


@dataclass
class DualConfig:
    """Everything that shapes the trainable part; stored in a run's config.json under "model"."""

    rank: int = 32
    lora_alpha: float | None = None  # None: alpha = rank, i.e. scale 1
    saim: bool = True
    saim_init: Literal["zero", "default"] = "zero"  # "default": the released code's (non-zero) initialisation
    text_encoder_lora: bool = True
    bcm: bool = False
    bcm_form: BCMForm = "additive"
    object_token: str = "vfx"
    anomaly_token: str = "sks"

    @property
    def global_prompt(self) -> str:
        return f"a {self.object_token} with {self.anomaly_token}"

    @property
    def anomaly_prompt(self) -> str:
        return self.anomaly_token

    @property
    def num_streams(self) -> int:
        return 3 if self.bcm else 2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DualConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelError(f"unknown model settings {unknown}; this run was made by another version")
        return cls(**data)


TEXT_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


def diffusion_target(scheduler: DDPMScheduler, clean: torch.Tensor, noise: torch.Tensor,
                     timesteps: torch.Tensor) -> torch.Tensor:
    """What the UNet learns to predict: the noise (SD 1.x), the velocity (SD 2.x 768-v) or the clean sample."""
    prediction_type = scheduler.config.prediction_type
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "v_prediction":
        return scheduler.get_velocity(clean, noise, timesteps)
    if prediction_type == "sample":
        return clean
    raise ModelError(f"unsupported prediction type {prediction_type!r} in the scheduler config")


class DualAnoDiffModel(nn.Module):
    """The frozen base plus the trainable adapters; `forward` returns the training loss of a batch."""

    def __init__(self, base: BaseModel, config: DualConfig):
        super().__init__()
        self.config = config
        self.base_name = base.name
        self.unet = base.unet
        self.text_encoder = base.text_encoder
        self.codec = base.codec
        self.tokenizer = base.tokenizer
        self.scheduler_config = base.scheduler_config
        self.noise_scheduler = DDPMScheduler.from_config(base.scheduler_config)
        for frozen in (self.unet, self.text_encoder, self.codec):
            frozen.requires_grad_(False)
        install_dual_processors(self.unet, config.rank, saim=config.saim,
                                saim_zero_init=config.saim_init == "zero",
                                bcm_form=config.bcm_form if config.bcm else None, lora_alpha=config.lora_alpha)
        if config.text_encoder_lora:
            lora = LoraConfig(r=config.rank, lora_alpha=config.lora_alpha or config.rank,
                              target_modules=TEXT_LORA_TARGETS)
            inject_adapter_in_model(lora, self.text_encoder)

    # --- the trainable part -------------------------------------------------------------------------------------
    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        """LoRA, SAIM, BCM and text-encoder LoRA weights: what a run stores (never the frozen base)."""
        return {name: param.detach() for name, param in self.named_parameters() if param.requires_grad}

    def load_adapter_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        own = dict(self.named_parameters())
        expected = {name for name, param in own.items() if param.requires_grad}
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        if missing or unexpected:
            raise ModelError(f"adapter weights do not fit this model: {len(missing)} missing "
                             f"(e.g. {missing[:1]}), {len(unexpected)} unexpected (e.g. {unexpected[:1]})")
        with torch.no_grad():
            for name, value in state.items():
                if own[name].shape != value.shape:
                    raise ModelError(f"adapter weight {name} has shape {tuple(value.shape)}, "
                                     f"expected {tuple(own[name].shape)}")
                own[name].copy_(value)

    def fuse_adapters(self) -> None:
        """Fold the branch LoRAs into per-stream projection weights, for generation (call after `.to(...)`)."""
        for name, processor in self.unet.attn_processors.items():
            processor.fuse(self.unet.get_submodule(name.removesuffix(".processor")), self.config.num_streams)

    # --- text ---------------------------------------------------------------------------------------------------
    def token_ids(self, prompts: list[str]) -> torch.Tensor:
        return self.tokenizer(prompts, padding="max_length", max_length=self.tokenizer.model_max_length,
                              truncation=True, return_tensors="pt").input_ids

    def anomaly_token_indices(self) -> list[int]:
        """Positions of the anomaly token(s) in the anomaly branch's prompt (after the start token)."""
        ids = self.tokenizer(self.config.anomaly_prompt).input_ids
        return list(range(1, len(ids) - 1))

    def stream_prompts(self, unconditional: bool = False) -> list[str]:
        """One prompt per stream; the BCM background stream reads the global prompt."""
        if unconditional:
            return [""] * self.config.num_streams
        prompts = [self.config.global_prompt, self.config.anomaly_prompt]
        return [*prompts, self.config.global_prompt] if self.config.bcm else prompts

    def text_embeddings(self, groups: int, unconditional: bool = False) -> torch.Tensor:
        """((groups f), tokens, width) prompt embeddings in the interleaved stream layout."""
        device = next(self.text_encoder.parameters()).device
        embeddings = self.text_encoder(self.token_ids(self.stream_prompts(unconditional)).to(device))[0]
        return embeddings.repeat(groups, 1, 1)

    # --- denoising ----------------------------------------------------------------------------------------------
    def predict(self, latents: torch.Tensor, timesteps: torch.Tensor, text: torch.Tensor,
                attention_store: AttentionStore | None = None) -> torch.Tensor:
        """The UNet's prediction for interleaved latents ((b f), C, H, W)."""
        context = DualContext(self.config.num_streams, attention_store)
        return self.unet(latents, timesteps, encoder_hidden_states=text,
                         cross_attention_kwargs={"dual": context}).sample

    def forward(self, clean_latents: torch.Tensor, noise: torch.Tensor,
                timesteps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training loss for latents (b, f, C, H, W), noise of the same shape, and one timestep per group (b,).

        Returns the loss (sum of the two branches' MSE, SPEC section 2) and the per-branch losses (detached).
        The background stream only conditions the global branch: it has no loss of its own.
        """
        groups, streams = clean_latents.shape[:2]
        timesteps = timesteps.repeat_interleave(streams)
        clean, noise = clean_latents.flatten(0, 1), noise.flatten(0, 1)
        noisy = self.noise_scheduler.add_noise(clean, noise, timesteps)
        target = diffusion_target(self.noise_scheduler, clean, noise, timesteps)
        prediction = self.predict(noisy, timesteps, self.text_embeddings(groups))
        error = F.mse_loss(prediction.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
        branch_losses = error.view(groups, streams)[:, :2].mean(dim=0)
        return branch_losses.sum(), branch_losses.detach()
