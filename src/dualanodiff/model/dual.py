"""The dual-interrelated diffusion model: one frozen UNet, two branches, SAIM between them (SPEC section 2).

The global branch denoises the whole anomaly image I, the anomaly branch the anomaly part I_a = I x M, both in one
interleaved batch ((b f) with f = 2, or 3 with the BCM background stream), at the same timestep with independent
noise. Each branch has its own LoRA on every attention projection of the UNet (and, with `output_head`, its own
update of the UNet's output convolution); the text encoder has one LoRA that both branches share (peft).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from peft import LoraConfig, inject_adapter_in_model
from torch import nn

from dualanodiff.errors import ModelError
from dualanodiff.model.attention import AttentionStore, DualContext, install_dual_processors
from dualanodiff.model.base import BaseModel
from dualanodiff.model.config import ADAPTER_WEIGHTS, DualConfig
from dualanodiff.model.output_head import BranchOutputConv
from dualanodiff.model.streams import BRANCHES, GLOBAL
from dualanodiff.weights import load_weights, save_weights, trainable_state_dict

TEXT_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]
ADAPTER_FORMAT = "dualanodiff-adapters/1"


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
        background_branch = GLOBAL if config.background_lora == "global" else None
        install_dual_processors(self.unet, config.rank, saim=config.saim,
                                saim_zero_init=config.saim_init == "zero",
                                bcm_form=config.bcm_form if config.bcm else None, lora_alpha=config.lora_alpha,
                                background_branch=background_branch)
        if config.output_head:
            self.unet.conv_out = BranchOutputConv(self.unet.conv_out, config.num_streams,
                                                  background_branch=background_branch)
        if config.text_encoder_lora:
            lora = LoraConfig(r=config.rank, lora_alpha=config.lora_alpha or config.rank,
                              target_modules=TEXT_LORA_TARGETS)
            inject_adapter_in_model(lora, self.text_encoder)

    # --- the trainable part -------------------------------------------------------------------------------------
    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        """LoRA, SAIM, BCM and text-encoder LoRA weights: what a run stores (never the frozen base)."""
        return trainable_state_dict(self)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write the adapters to `directory`/weights.safetensors (the settings travel in the caller's config)."""
        return save_weights(Path(directory) / ADAPTER_WEIGHTS, self.adapter_state_dict(),
                            metadata={"format": ADAPTER_FORMAT, "base_model": str(self.base_name)})

    @classmethod
    def from_pretrained(cls, directory: str | Path, base: BaseModel, config: DualConfig) -> DualAnoDiffModel:
        """The model of `config` on `base`, with the adapters saved in `directory`."""
        model = cls(base, config)
        path = Path(directory) / ADAPTER_WEIGHTS
        state = load_weights(path)  # its errors name the file
        try:
            model.load_adapter_state_dict(state)
        except ModelError as error:
            raise ModelError(f"{path}: {error}") from None
        return model

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
        branch_losses = error.view(groups, streams)[:, :BRANCHES].mean(dim=0)
        return branch_losses.sum(), branch_losses.detach()
