"""Helpers the test modules share (tests/ is on sys.path: `from helpers import micro_settings`)."""

from dualanodiff.model.config import DualConfig
from dualanodiff.training.settings import TrainSettings


def micro_settings(data_root, base_dir, **settings) -> TrainSettings:
    """A few training steps of the micro base on the synthetic washer's rust, at 32 px, whole images (window
    tests pass canvas="window")."""
    values = {"preset": "tiny", "steps": 4, "batch_size": 2, "resolution": 32, "checkpoint_every": 2, "seed": 7,
              "canvas": "image",
              **settings}
    model = values.pop("model", DualConfig())
    model = DualConfig(**{**model.to_dict(), "rank": values.pop("rank", 4)})
    return TrainSettings(data_root=str(data_root), object="washer", anomaly="rust", base_model=str(base_dir),
                         model=model, **values)
