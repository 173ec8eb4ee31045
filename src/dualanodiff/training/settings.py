"""Training settings as data: the presets, `TrainSettings` (one dual-branch run) and `TinyBaseSettings` (the tiny
preset's base pre-training). No torch here: the CLI builds and checks these before anything heavy is imported."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from dualanodiff.errors import UserError
from dualanodiff.model.config import DualConfig
from dualanodiff.settings import Settings, setting

# The released code trains without flips for this object (its two sides are not interchangeable).
NO_FLIP_OBJECTS = ("cable",)
SD15_HUB_ID = "stable-diffusion-v1-5/stable-diffusion-v1-5"
LR_SCHEDULES = ("constant", "cosine")
MIXED_PRECISIONS = ("auto", "no", "fp16", "bf16")
# What the model draws: the whole image (the paper), or windows around the defects at the data's own detail,
# blended into real normal images (generation/windows.py).
CANVASES = ("image", "window")
MODEL_PRESET_KEYS = ("output_head",)  # preset defaults that are the dual model's settings (DualConfig)
WORKING_FACTOR = 4  # a window canvas's working resolution defaults to this many times the model's input side

# Per preset defaults; every one is printed at the start of training and stored in config.json. The sd15 preset's
# resolution `None` is the base model's own (512 for SD 1.x, 768 for SD 2.x 768-v): `train` fills it once the base
# is loaded, so config.json holds the number used.
PRESETS: dict[str, dict[str, Any]] = {
    # SPEC section 2: the released code's settings (lr 2e-5; the paper says 5e-6: pass --lr 5e-6).
    "sd15": {"base_model": SD15_HUB_ID, "resolution": None, "steps": 5000, "batch_size": 4, "lr": 2e-5,
             "lr_schedule": "constant", "mixed_precision": "auto", "checkpoint_every": 500, "seed": 32,
             "canvas": "image", "output_head": False},
    # A CPU-sized stand-in: a small base pre-trained on the object's normal images, then the same dual training.
    "tiny": {"base_model": None, "resolution": 64, "steps": 800, "batch_size": 4, "lr": 2e-3,
             "lr_schedule": "cosine", "mixed_precision": "no", "checkpoint_every": 200, "seed": 32,
             "base_steps": 2000, "base_batch_size": 16, "base_lr": 5e-4, "canvas": "window", "output_head": True},
}


def preset_defaults_text(name: str) -> str:
    """'tiny: 800, sd15: 5000' for a setting the presets choose (command-line help is built from this)."""
    return ", ".join(f"{preset}: {values[name]}" + (" (the base model's own)" if values[name] is None else "")
                     for preset, values in PRESETS.items() if name in values)


@dataclass
class TinyBaseSettings(Settings):
    """Pre-training of the tiny preset's base on the object's normal images (also the cache key)."""

    resolution: int = setting(64, minimum=8)
    steps: int = setting(2000, minimum=1)
    batch_size: int = setting(16, minimum=1)
    lr: float = setting(5e-4, above=0)
    seed: int = 32
    prompt: str = "a vfx"
    flip_horizontal: bool = True
    flip_vertical: bool = True
    # With a window canvas the base learns windows of the normal images, of sides from `resolution` to the
    # whole image at `working_resolution` (None: whole images at `resolution`, the image canvas).
    working_resolution: int | None = setting(None, minimum=8)


@dataclass
class TrainSettings(Settings):
    """One dual-branch run. `None` in a preset field means "take the preset's default": `resolved()` fills it (the
    sd15 preset's resolution stays `None` there: `train` takes the base model's own)."""

    data_root: str = setting(flag="--data")
    object: str = setting()
    anomaly: str = setting()
    preset: str = setting("tiny", choices=tuple(PRESETS))
    layout: str | None = None
    base_model: str | None = None
    resolution: int | None = setting(None, minimum=8)
    steps: int | None = setting(None, minimum=1)
    batch_size: int | None = setting(None, minimum=1)
    gradient_accumulation: int = setting(1, minimum=1)
    lr: float | None = setting(None, above=0)
    seed: int | None = None
    mixed_precision: str | None = setting(None, choices=MIXED_PRECISIONS)
    checkpoint_every: int | None = setting(None, minimum=1)
    keep_checkpoints: int = setting(2, minimum=1)
    gradient_checkpointing: bool = False
    ema_decay: float | None = setting(None, minimum=0, maximum=0.99999)  # 0 or None: off
    lr_schedule: str | None = setting(None, choices=LR_SCHEDULES)  # constant (the released code's) or cosine
    compile: bool = False  # torch.compile the UNet: speed only, the same results
    flip_horizontal: bool | None = None  # None: on, except for objects whose sides differ
    flip_vertical: bool | None = None
    train_count: int | None = setting(None, minimum=1)
    base_steps: int | None = setting(None, minimum=1)
    base_batch_size: int | None = setting(None, minimum=1)
    base_lr: float | None = setting(None, above=0)
    object_masks: str | None = None  # BCM: a folder of object masks made with any tool
    object_segmenter: str = "border"  # BCM: the weight-free default, or module.path:factory
    canvas: str | None = setting(None, choices=CANVASES)
    working_resolution: int | None = setting(None, minimum=8)  # window canvas: the side read and written
    window_margin: float = setting(0.5, minimum=0)  # window side = the anomaly's extent x (1 + 2 margin)
    model: DualConfig = field(default_factory=DualConfig)

    def resolved(self) -> TrainSettings:
        """A validated copy with every `None` default filled from the preset, and a local base model folder made
        absolute (a run is read from any working folder; a hub id stays as it is)."""
        self.validate()
        values = asdict(self)
        model = self.model
        for key, default in PRESETS[self.preset].items():
            if key in MODEL_PRESET_KEYS:
                model = replace(model, **{key: default}) if getattr(model, key) is None else model
            elif values.get(key) is None:
                values[key] = default
        flips_allowed = self.object not in NO_FLIP_OBJECTS
        for key in ("flip_horizontal", "flip_vertical"):
            if values[key] is None:
                values[key] = flips_allowed
        for key in ("data_root", "layout", "object_masks"):
            if values[key] is not None:
                values[key] = str(Path(values[key]).resolve())
        base_dir = Path(values["base_model"]).expanduser() if values["base_model"] is not None else None
        if base_dir is not None and base_dir.is_dir():
            values["base_model"] = str(base_dir.resolve())
        values["model"] = model
        if values["canvas"] == "image" and values["working_resolution"] is not None:
            raise UserError("--working-resolution needs --canvas window (the image canvas works at --resolution)")
        if values["canvas"] == "window" and values["resolution"] is not None:  # (sd15's: once its base loads)
            values["working_resolution"] = values["working_resolution"] or WORKING_FACTOR * values["resolution"]
            if values["working_resolution"] < values["resolution"]:
                raise UserError(f"--working-resolution {values['working_resolution']} is below --resolution "
                                f"{values['resolution']}: a window would be drawn at more detail than the data has")
        return TrainSettings(**values).validate()

    @property
    def windowed(self) -> bool:
        return self.canvas == "window"

    @property
    def working_side(self) -> int:
        """The side of the images a run reads and writes: the working resolution (a run of a version before
        windows has none: its resolution)."""
        return self.working_resolution or self.resolution

    def tiny_base(self) -> TinyBaseSettings:
        """The tiny base's pre-training settings (of resolved settings)."""
        if self.base_steps is None:
            raise UserError("tiny_base() needs resolved settings")
        return TinyBaseSettings(resolution=self.resolution, steps=self.base_steps, batch_size=self.base_batch_size,
                                lr=self.base_lr, seed=self.seed, prompt=f"a {self.model.object_token}",
                                flip_horizontal=self.flip_horizontal, flip_vertical=self.flip_vertical,
                                working_resolution=self.working_resolution if self.windowed else None).validate()
