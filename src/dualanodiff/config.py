"""Training settings as data: presets, the resolved configuration, and a run folder's config.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from dualanodiff.errors import UserError
from dualanodiff.io import read_json, write_json
from dualanodiff.model.dual import DualConfig
from dualanodiff.training import LR_SCHEDULES

# The released code trains without flips for this object (its two sides are not interchangeable).
NO_FLIP_OBJECTS = ("cable",)
SD15_HUB_ID = "stable-diffusion-v1-5/stable-diffusion-v1-5"

# Per preset defaults; every one is printed at the start of training and stored in config.json.
PRESETS: dict[str, dict[str, Any]] = {
    # SPEC section 2: the released code's settings (lr 2e-5; the paper says 5e-6: pass --lr 5e-6).
    "sd15": {"base_model": SD15_HUB_ID, "resolution": 512, "steps": 5000, "batch_size": 4, "lr": 2e-5,
             "lr_schedule": "constant",
             "rank": 32, "mixed_precision": "auto", "checkpoint_every": 500, "seed": 32},
    # A CPU-sized stand-in: a small base pre-trained on the object's normal images, then the same dual training.
    "tiny": {"base_model": None, "resolution": 64, "steps": 800, "batch_size": 4, "lr": 2e-3, "rank": 32,
             "lr_schedule": "cosine",
             "mixed_precision": "no", "checkpoint_every": 200, "seed": 32, "base_steps": 2000,
             "base_batch_size": 16, "base_lr": 5e-4},
}


@dataclass
class TrainConfig:
    """A resolved training configuration. `None` in a preset field means "take the preset's default"."""

    data_root: str
    object: str
    anomaly: str
    preset: str = "tiny"
    layout: str | None = None
    base_model: str | None = None
    resolution: int | None = None
    steps: int | None = None
    batch_size: int | None = None
    gradient_accumulation: int = 1
    lr: float | None = None
    rank: int | None = None
    seed: int | None = None
    mixed_precision: str | None = None
    checkpoint_every: int | None = None
    keep_checkpoints: int = 2
    gradient_checkpointing: bool = False
    ema_decay: float | None = None  # an exponential moving average of the adapters, kept as the result
    lr_schedule: str | None = None  # constant (the released code's) or cosine (warm-up, then decay)
    compile: bool = False  # torch.compile the UNet: speed only, the same results
    flip_horizontal: bool | None = None
    flip_vertical: bool | None = None
    train_count: int | None = None
    base_steps: int | None = None
    base_batch_size: int | None = None
    base_lr: float | None = None
    object_masks: str | None = None  # BCM: a folder of object masks made with any tool
    object_segmenter: str = "border"  # BCM: the weight-free default, or module.path:factory
    model: DualConfig = field(default_factory=DualConfig)

    def resolved(self) -> TrainConfig:
        """A copy with every `None` default filled from the preset."""
        if self.preset not in PRESETS:
            raise UserError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        values = asdict(self)
        for key, default in PRESETS[self.preset].items():
            if values.get(key) is None:
                values[key] = default
        flips_allowed = self.object not in NO_FLIP_OBJECTS
        for key in ("flip_horizontal", "flip_vertical"):
            if values[key] is None:
                values[key] = flips_allowed
        values["model"] = DualConfig(**{**values["model"], "rank": values["rank"]})
        config = TrainConfig(**values)
        config.validate()
        return config

    def validate(self) -> None:
        for name in ("steps", "batch_size", "rank", "resolution", "checkpoint_every", "gradient_accumulation"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.lr is not None and not self.lr > 0:
            raise UserError(f"--lr must be positive, got {self.lr}")
        if self.lr_schedule not in (None, *LR_SCHEDULES):
            raise UserError(f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.mixed_precision not in (None, "auto", "no", "fp16", "bf16"):
            raise UserError(f"--mixed-precision must be auto, no, fp16 or bf16, got {self.mixed_precision!r}")

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["model"] = self.model.to_dict()
        return values

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["model"] = DualConfig.from_dict(data.get("model", {}))
        return cls(**values)


CONFIG_FILE = "config.json"


def write_run_config(run_dir: Path, config: TrainConfig, **extra: Any) -> Path:
    return write_json(run_dir / CONFIG_FILE, {"format": "dualanodiff-run/1", **extra, **config.to_dict()})


def read_run_config(run_dir: str | Path) -> tuple[TrainConfig, dict[str, Any]]:
    """The run's TrainConfig and the whole config.json (which also says where the base model and weights are)."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise UserError(f"{run_dir}: not a training run folder (no {CONFIG_FILE})")
    data = read_json(path)
    return TrainConfig.from_dict(data), data
