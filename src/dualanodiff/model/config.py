"""The dual model's settings (no torch here, so that settings are built and checked before torch is imported)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dualanodiff.model.streams import StreamLayout
from dualanodiff.settings import Settings, setting

BCM_FORMS = ("additive", "gated")  # the paper's h + gamma MLP(h_b), or the released code's gated form
BCMForm = Literal["additive", "gated"]
# BCM's background stream through the global branch's LoRA (the released code's background pass), or through the
# frozen base alone (what this project did before; runs written then keep it).
BACKGROUND_LORAS = ("global", "frozen")
ADAPTER_WEIGHTS = "weights.safetensors"  # the file DualAnoDiffModel.save_pretrained writes


@dataclass
class DualConfig(Settings):
    """Everything that shapes the trainable part; stored in a run's config.json under "model"."""

    rank: int = setting(32, minimum=1)
    lora_alpha: float | None = setting(None, above=0)  # None: alpha = rank, i.e. scale 1
    saim: bool = True
    # "default": the released code's (non-zero) initialisation
    saim_init: Literal["zero", "default"] = setting("zero", choices=("zero", "default"))
    text_encoder_lora: bool = True
    bcm: bool = False
    bcm_form: BCMForm = setting("additive", choices=BCM_FORMS)
    background_lora: str = setting("global", choices=BACKGROUND_LORAS)
    # Each branch's own update of the UNet's output convolution (model/output_head.py); None: the preset's choice.
    output_head: bool | None = None
    object_token: str = "vfx"
    anomaly_token: str = "sks"

    @property
    def global_prompt(self) -> str:
        return f"a {self.object_token} with {self.anomaly_token}"

    @property
    def anomaly_prompt(self) -> str:
        return self.anomaly_token

    @property
    def streams(self) -> StreamLayout:
        return StreamLayout(background=self.bcm)

    @property
    def num_streams(self) -> int:
        return self.streams.count
