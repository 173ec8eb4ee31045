"""Downstream classification: which anomaly type is this? A ResNet-18 trained on generated anomalies only.

Protocol (SPEC section 5): the classes are the anomaly types of the GEN folders given (all of one object, at least
two types); the network trains on every complete generated image, labelled with its GEN's type, on the fixed
schedule of `training` (ImageNet-standardised inputs at `resolution` px), and is tested on the held-out real
anomaly images of those types (`sets.held_out`). Accuracy overall (over all test images) and per type, and the
confusion matrix in counts (rows: true type, columns: predicted). The backbone starts from ImageNet weights only
when the user gives a local file (`backbone_weights`); otherwise from scratch, and metrics.json says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch.nn import functional as F

from dualanodiff.data import DataSource, load_images
from dualanodiff.devices import resolve_device
from dualanodiff.errors import UserError
from dualanodiff.evaluate.fitting import Schedule, predict, seeded, train
from dualanodiff.evaluate.networks import resnet18_classifier
from dualanodiff.evaluate.sets import held_out, load_generated, open_generated_sets
from dualanodiff.evaluate.settings import METRICS_FILE
from dualanodiff.io import write_json

CONFUSION_FILE = "confusion.png"


@dataclass(frozen=True)
class ClassificationSettings:
    epochs: int = 30
    resolution: int = 224
    batch_size: int = 32
    learning_rate: float | None = None  # default: 1e-3 from scratch, 1e-4 from pretrained weights
    seed: int = 0

    def __post_init__(self) -> None:
        if self.resolution < 32:
            raise UserError(f"--resolution {self.resolution}: must be at least 32 pixels for ResNet-18")

    def schedule(self, pretrained: bool) -> Schedule:
        default = 1e-4 if pretrained else 1e-3
        return Schedule(self.epochs, self.batch_size, self.learning_rate or default)


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Counts (classes, classes): rows the true class, columns the predicted one."""
    matrix = np.zeros((classes, classes), np.int64)
    np.add.at(matrix, (true, predicted), 1)
    return matrix


def evaluate_classification(source: DataSource, gen_dirs: Sequence[str | Path], out: str | Path, *,
                            object: str | None = None, settings: ClassificationSettings | None = None,
                            backbone_weights: str | Path | None = None, device: str | None = None) -> dict[str, Any]:
    """Train a ResNet-18 on the GENs' images (class = anomaly type), test on held-out real anomalies; writes
    OUT/metrics.json and OUT/confusion.png and returns the metrics."""
    from dualanodiff.viz import plot_confusion_matrix

    settings = settings or ClassificationSettings()
    torch_device = resolve_device(device)
    out = Path(out)
    generated = open_generated_sets(gen_dirs, object)
    object = generated[0].object
    classes = sorted({g.anomaly for g in generated})
    if len(classes) < 2:
        raise UserError(f"classification needs generated sets of at least 2 anomaly types of {object}; "
                        f"got only {classes[0]!r}")
    test_side = held_out(source, generated, need_normal=False)
    size = settings.resolution
    model, backbone = seeded(settings.seed, lambda: resnet18_classifier(len(classes), backbone_weights))
    schedule = settings.schedule(pretrained=backbone_weights is not None)

    train_parts = [load_generated(g, size)[0] for g in generated]
    train_images = np.concatenate(train_parts)
    train_labels = np.concatenate([np.full(len(images), classes.index(g.anomaly))
                                   for g, images in zip(generated, train_parts, strict=True)])
    test_parts = [load_images([s.image_path for s in test_side.anomalies[anomaly]], size, f"test {anomaly}")
                  for anomaly in classes]
    test_images = np.concatenate(test_parts)
    test_labels = np.concatenate([np.full(len(images), index) for index, images in enumerate(test_parts)])

    losses = train(model, train_images, train_labels, F.cross_entropy, schedule, seed=settings.seed,
                   device=torch_device, normalize=True, description="ResNet-18")
    predicted = predict(model, test_images, batch_size=schedule.batch_size, device=torch_device, normalize=True,
                        output=lambda logits: logits.argmax(dim=1)).astype(np.int64)
    matrix = confusion_matrix(test_labels, predicted, len(classes))
    per_type = {anomaly: float(matrix[index, index] / matrix[index].sum()) for index, anomaly in enumerate(classes)}
    methods = sorted({g.method for g in generated})
    plot_confusion_matrix(matrix, classes, out / CONFUSION_FILE,
                          title=f"{object}: ResNet-18 ({backbone.split(':')[0]}) on {', '.join(methods)}")
    metrics = {
        "kind": "classification", "object": object, "methods": methods, "classes": classes,
        "backbone": backbone, "epochs": settings.epochs, "resolution": size,
        "accuracy": float(np.trace(matrix) / matrix.sum()), "per_type": per_type,
        "confusion_matrix": matrix.tolist(),
        "generated": [{"path": str(g.root), "method": g.method, "anomaly": g.anomaly,
                       "samples": len(g.completed_indices())} for g in generated],
        "settings": {**asdict(settings), "schedule": schedule.as_dict(), "device": str(torch_device)},
        "epoch_losses": losses,
        "test_images": {anomaly: [s.name for s in samples] for anomaly, samples in test_side.anomalies.items()},
    }
    write_json(out / METRICS_FILE, metrics)
    return metrics
