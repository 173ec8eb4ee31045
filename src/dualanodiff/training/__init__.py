"""Training: the settings (`TrainSettings`), the RUN folder (`Run`), the dual-branch fine-tuning (`train`), the
optimisation loop both recipes share, checkpoints, and the tiny preset's base pre-training."""

from dualanodiff.lazy import lazy_exports

_EXPORTS = {
    "PRESETS": "dualanodiff.training.settings",
    "TinyBaseSettings": "dualanodiff.training.settings",
    "TrainSettings": "dualanodiff.training.settings",
    "Run": "dualanodiff.training.run",
    "train": "dualanodiff.training.finetune",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
