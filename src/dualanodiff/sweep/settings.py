"""What a sweep runs, as data: `SweepSettings` holds the stages' own settings objects as templates.

Every job trains with `train` (its data_root, layout, object and anomaly replaced by the job's), generates with
`generate` (its num replaced by the sweep's `num`) and every object is evaluated with `localization`. A Python user
sweeps with the same objects the commands build:

    SweepSettings(data="mvtec_ad", out="sweep", num=16, train=train_template(steps=200),
                  generate=GenerateSettings(num=1, steps=20), localization=LocalizationSettings(epochs=5))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dualanodiff.evaluate.settings import LocalizationSettings
from dualanodiff.generation.settings import GenerateSettings
from dualanodiff.settings import Settings, setting
from dualanodiff.training.settings import TrainSettings

EVERY = "*"  # the template's object and anomaly: each job puts in its own


def train_template(**values: Any) -> TrainSettings:
    """TrainSettings for every job of a sweep: the job fills in data_root, layout, object and anomaly."""
    return TrainSettings(**{"data_root": "", "object": EVERY, "anomaly": EVERY, **values})


def _generate_template() -> GenerateSettings:
    return GenerateSettings(num=1)


@dataclass
class SweepSettings(Settings):
    """The data set and folder, which (object, anomaly type) pairs, the stages' settings, and the jobs' room."""

    data: Path = setting()
    out: Path = setting()
    layout: Path | None = None
    objects: tuple[str, ...] = ()  # empty: every object of the data set
    anomalies: tuple[str, ...] = ()  # empty: every anomaly type
    num: int = setting(1000, minimum=1)  # triplets per anomaly type (replaces generate.num)
    train: TrainSettings = field(default_factory=train_template)
    generate: GenerateSettings = field(default_factory=_generate_template)
    localization: LocalizationSettings = field(default_factory=LocalizationSettings)
    localization_device: str | None = setting(None, flag="--eval-device")
    gpus_per_job: int | None = setting(None, minimum=0)  # None: 1 on a Ray cluster with GPUs, else 0
    cpus_per_job: int | None = setting(None, minimum=1)  # None: Ray's default of 1; locally torch's threads stay
    retries: int = setting(1, minimum=0)

    def __post_init__(self) -> None:
        self.data, self.out = Path(self.data), Path(self.out)
        self.layout = Path(self.layout) if self.layout is not None else None
        self.objects, self.anomalies = tuple(self.objects), tuple(self.anomalies)
        self.validate()

    @property
    def shares_tiny_base(self) -> bool:
        """Whether each object's jobs pre-train one tiny base (the first type's job makes it, the others reuse it)."""
        return self.train.preset == "tiny" and self.train.base_model is None
