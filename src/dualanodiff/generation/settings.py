"""Generation settings as data (no torch here): what `dualanodiff generate` makes from a run."""

from __future__ import annotations

from dataclasses import dataclass

from dualanodiff.settings import Settings, setting

SCHEDULER_NAMES = ("ddim", "dpm", "pndm")


@dataclass
class GenerateSettings(Settings):
    """N (image, anomaly part, mask) triplets from a run. Sample i depends on (seed, i) alone; `batch_size`,
    `device` and `compile` change only the speed (and, on a CPU, float sums in their last bits)."""

    num: int = setting(minimum=1)
    steps: int = setting(50, minimum=1)  # denoising steps
    guidance: float = setting(2.5, minimum=0)  # classifier-free guidance scale
    batch_size: int = setting(8, minimum=1)
    seed: int = 0
    mask_method: str = "threshold"  # threshold, attention, or module.path:factory
    scheduler: str = setting("ddim", choices=SCHEDULER_NAMES)
    background_every: int = setting(50, minimum=1)  # BCM: a new background every K samples
    backgrounds: str | None = None  # a BCM run whose backgrounds the samples are measured against
    device: str | None = None  # default: CUDA when present
    export_mvtec: str | None = None  # also write the pairs in MVTec AD layout under this root
    export_anomalib: str | None = None  # also write them in anomalib's Folder layout under this root
    compile: bool = False  # torch.compile the UNet

    def recorded(self, has_backgrounds: bool) -> dict:
        """What a GEN's meta.json records (and a resumed GEN must match): the settings that change the samples."""
        return {"num": self.num, "steps": self.steps, "guidance": self.guidance, "seed": self.seed,
                "mask_method": self.mask_method, "scheduler": self.scheduler,
                "background_every": self.background_every if has_backgrounds else None}
