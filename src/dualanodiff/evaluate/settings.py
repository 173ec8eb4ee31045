"""The evaluation protocol's settings as data (no torch here): the downstream localization's network and schedule."""

from __future__ import annotations

from dataclasses import dataclass

from dualanodiff.errors import UserError
from dualanodiff.settings import Settings, setting

METRICS_FILE = "metrics.json"  # what every evaluation writes into its folder (the EVAL format)
SIZE_MULTIPLE = 32  # DRAEM's U-Net halves the working side five times
DRAEM_FILTER = 21  # DRAEM's mean filter (pixels at 256 px) before taking an image's maximum


@dataclass
class LocalizationSettings(Settings):
    """DRAEM's discriminative U-Net trained on a fixed schedule (no test-set checkpoint selection)."""

    epochs: int = setting(20, minimum=1)
    resolution: int = setting(256, minimum=SIZE_MULTIPLE)  # the working side
    seeds: int = setting(1, minimum=1)  # networks trained (seeds 0..seeds-1): mean and std
    batch_size: int = setting(8, minimum=1)
    base_width: int = setting(64, minimum=1)  # the U-Net's base width (DRAEM: 64)
    learning_rate: float = setting(1e-4, above=0)  # Adam's

    def validate(self) -> LocalizationSettings:
        super().validate()
        if self.resolution % SIZE_MULTIPLE:
            raise UserError(f"--resolution {self.resolution}: must be a positive multiple of {SIZE_MULTIPLE} "
                            "(the U-Net halves it five times)")
        return self

    @property
    def filter_size(self) -> int:
        return max(1, round(DRAEM_FILTER * self.resolution / 256) // 2 * 2 + 1)
