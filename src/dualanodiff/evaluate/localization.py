"""Downstream localization and detection: a segmentation network trained on generated pairs, tested on real ones.

Protocol (SPEC section 5, without the released code's leak):
- Training set: the complete samples of every GEN folder given (all of one object, any mix of anomaly types and
  methods), each with its mask, plus the object's normal training images with all-zero masks; every image and mask
  resized to `resolution` x `resolution` (masks by nearest neighbour).
- Network: DRAEM's discriminative U-Net on the RGB image, 2-class output, focal loss (gamma 2), trained on the
  fixed schedule of `training` (no checkpoint selection on the test set).
- Test set: the held-out real anomalies of each type (`sets.held_out`) plus the object's normal test images.
- Pixel AUROC / AP / F1-max over every pixel of the test images at the working resolution (the softmax anomaly
  probability); image AUROC / AP / F1-max from the maximum of the anomaly map after a mean filter of 21 px at
  256 px (scaled with the resolution), as DRAEM does. Per anomaly type: that type's images plus all normal test
  images; overall: every test image.
- `seeds` networks (seeds 0..seeds-1; a seed fixes its network's first weights, the order of the pairs and the
  jitter, so seed k of one method is trained like seed k of another, in any run): metrics.json holds the means
  over seeds, their sample standard deviation ("std", 0 for one seed) and each seed's figures. Each finished seed
  is kept in `OUT/seeds/`, so a stopped run resumes with the next seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from dualanodiff.data import DataSource, load_anomalies, load_images
from dualanodiff.devices import resolve_device
from dualanodiff.errors import UserError
from dualanodiff.evaluate.fitting import Schedule, predict, seeded, train
from dualanodiff.evaluate.metrics import METRIC_KEYS, ranking_metrics
from dualanodiff.evaluate.networks import DiscriminativeUNet, focal_loss
from dualanodiff.evaluate.sets import HeldOut, held_out, load_generated, open_generated_sets
from dualanodiff.evaluate.settings import METRICS_FILE, LocalizationSettings
from dualanodiff.generation.generated_set import GeneratedSet
from dualanodiff.io import read_json, write_json
from dualanodiff.progress import progress

EXAMPLES_FILE = "examples.png"


@dataclass(frozen=True)
class HeldOutImages:
    images: np.ndarray  # uint8 (N, R, R, 3)
    masks: np.ndarray  # bool (N, R, R)
    types: list[str]  # each image's anomaly type, "good" for normal images
    names: list[str]

    def members(self, anomaly: str | None) -> np.ndarray:
        """Indices of one type's images plus all normal images (all images for None)."""
        types = np.asarray(self.types)
        return np.arange(len(types)) if anomaly is None else np.flatnonzero((types == anomaly) | (types == "good"))


def anomaly_scores(maps: np.ndarray, filter_size: int) -> np.ndarray:
    """Image scores: the maximum of each (N, H, W) map after a filter_size mean filter (zero-padded, as DRAEM)."""
    tensor = torch.from_numpy(maps).unsqueeze(1)
    smoothed = F.avg_pool2d(tensor, filter_size, stride=1, padding=filter_size // 2)
    return smoothed.flatten(1).amax(dim=1).numpy()


def score_test_set(maps: np.ndarray, test: HeldOutImages, filter_size: int) -> dict[str, Any]:
    """Overall and per-type pixel and image metrics of anomaly maps (N, H, W) against the test set."""
    image_scores = anomaly_scores(maps, filter_size)
    image_labels = np.asarray([kind != "good" for kind in test.types])

    def figures(indices: np.ndarray) -> dict[str, float]:
        return {**ranking_metrics(maps[indices], test.masks[indices]).as_dict("pixel_"),
                **ranking_metrics(image_scores[indices], image_labels[indices]).as_dict("image_")}

    anomaly_types = sorted(set(test.types) - {"good"})
    return {**figures(test.members(None)),
            "per_type": {anomaly: figures(test.members(anomaly)) for anomaly in anomaly_types}}


def _fingerprint(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a seed's result depends on: the record without the number of seeds (asking for more keeps the seeds
    already trained). Seed files without "initial_weights" come from networks whose first weights the seed did not
    fix, so they do not match and are trained again."""
    if not isinstance(record, dict) or not isinstance(record.get("settings"), dict):
        return record
    return {**record, "settings": {k: v for k, v in record["settings"].items() if k != "seeds"}}


def _mean_and_std(values: Sequence[dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    means = {key: float(np.mean([v[key] for v in values])) for key in METRIC_KEYS}
    stds = {key: float(np.std([v[key] for v in values], ddof=1)) if len(values) > 1 else 0.0
            for key in METRIC_KEYS}
    return means, stds


def _save_examples(path: Path, test: HeldOutImages, maps: np.ndarray, title: str, per_type: int = 2) -> None:
    """image | ground truth | predicted anomaly map, for a few test images of each type and one normal image."""
    from matplotlib import colormaps

    from dualanodiff.viz import mask_overlay, side_by_side

    chosen = [i for anomaly in sorted(set(test.types) - {"good"})
              for i in [j for j, kind in enumerate(test.types) if kind == anomaly][:per_type]]
    chosen += [j for j, kind in enumerate(test.types) if kind == "good"][:1]
    heat = colormaps["jet"]
    side_by_side({
        "image": [test.images[i] for i in chosen],
        "ground truth": [mask_overlay(test.images[i], test.masks[i]) for i in chosen],
        "anomaly map": [(heat(np.clip(maps[i], 0, 1))[..., :3] * 255).astype(np.uint8) for i in chosen],
    }, path, title=title)


def _training_set(generated: list[GeneratedSet], source: DataSource, size: int) -> tuple[np.ndarray, np.ndarray,
                                                                                          dict[str, int]]:
    """The generated pairs of every GEN plus the object's normal training images (all-zero masks)."""
    parts = [load_generated(g, size) for g in generated]
    normal_images = load_images(source.normal_train(generated[0].object), size, "normal training images")
    images = np.concatenate([images for images, _ in parts] + [normal_images])
    masks = np.concatenate([masks for _, masks in parts] + [np.zeros((len(normal_images), size, size), bool)])
    return images, masks, {"generated": int(sum(len(images) for images, _ in parts)), "normal": len(normal_images)}


def _test_set(test_side: HeldOut, object: str, size: int) -> HeldOutImages:
    """The held-out real anomalies of every type, then the normal test images."""
    anomaly_images, anomaly_masks, types, names = [], [], [], []
    for anomaly, samples in test_side.anomalies.items():
        images, masks = load_anomalies(samples, size, f"test {anomaly}")
        anomaly_images.append(images)
        anomaly_masks.append(masks)
        types += [anomaly] * len(samples)
        names += [sample.name for sample in samples]
    good_images = load_images(test_side.normal, size, "test good")
    test = HeldOutImages(images=np.concatenate([*anomaly_images, good_images]),
                         masks=np.concatenate([*anomaly_masks, np.zeros((len(good_images), size, size), bool)]),
                         types=types + ["good"] * len(good_images), names=names + [p.name for p in test_side.normal])
    for anomaly in test_side.types:
        if not test.masks[np.asarray(test.types) == anomaly].any():
            raise UserError(f"{object}/{anomaly}: every test mask vanishes at {size} px; raise --resolution")
    return test


def evaluate_localization(source: DataSource, gen_dirs: Sequence[str | Path], out: str | Path, *,
                          object: str | None = None, settings: LocalizationSettings | None = None,
                          device: str | None = None) -> dict[str, Any]:
    """Train `settings.seeds` segmentation networks on the GENs and score them on held-out real images; writes
    OUT/metrics.json and OUT/examples.png and returns the metrics."""
    settings = (settings or LocalizationSettings()).validate()
    schedule = Schedule(settings.epochs, settings.batch_size, settings.learning_rate)
    torch_device = resolve_device(device)
    out = Path(out)
    generated = open_generated_sets(gen_dirs, object)
    object, size = generated[0].object, settings.resolution
    test_side = held_out(source, generated)
    train_images, train_masks, train_counts = _training_set(generated, source, size)
    test = _test_set(test_side, object, size)
    test_images = {anomaly: [s.name for s in samples] for anomaly, samples in test_side.anomalies.items()}
    test_images["good"] = [path.name for path in test_side.normal]
    generated_info = [{"path": str(g.root), "method": g.method, "anomaly": g.anomaly,
                       "samples": len(g.completed_indices())} for g in generated]
    # What a finished seed must match to be reused on a re-run (see _fingerprint).
    fingerprint = _fingerprint({"settings": settings.to_dict(), "generated": generated_info,
                                "test_images": test_images, "normal_train": train_counts["normal"],
                                "initial_weights": "seeded"})
    per_seed = []
    maps, example_seed = None, 0
    for seed in progress(range(settings.seeds), desc=f"localization {object}", unit="seed"):
        seed_file = out / "seeds" / f"seed_{seed}.json"
        saved = read_json(seed_file) if seed_file.is_file() else {}
        if _fingerprint(saved.get("fingerprint")) == fingerprint:
            per_seed.append(saved["result"])
            continue
        model = seeded(seed, lambda: DiscriminativeUNet(settings.base_width))
        losses = train(model, train_images, train_masks, focal_loss, schedule, seed=seed, device=torch_device,
                       normalize=False, description=f"U-Net seed {seed}")
        maps = predict(model, test.images, batch_size=schedule.batch_size, device=torch_device, normalize=False,
                       output=lambda logits: torch.softmax(logits, dim=1)[:, 1])
        result = {"seed": seed, **score_test_set(maps, test, settings.filter_size), "epoch_losses": losses}
        write_json(seed_file, {"fingerprint": fingerprint, "result": result})
        per_seed.append(result)
        example_seed = seed
    methods = sorted({g.method for g in generated})
    if maps is not None:
        _save_examples(out / EXAMPLES_FILE, test, maps,
                       f"{object}: U-Net trained on {', '.join(methods)} (seed {example_seed})")
    means, stds = _mean_and_std(per_seed)
    per_type = {}
    for anomaly in test_side.types:
        per_type[anomaly], type_stds = _mean_and_std([result["per_type"][anomaly] for result in per_seed])
        per_type[anomaly]["std"] = type_stds
    metrics = {
        "kind": "localization", "object": object, "methods": methods,
        "seeds": settings.seeds, "epochs": settings.epochs, "resolution": size, "base_width": settings.base_width,
        "generated": generated_info,
        "settings": {**settings.to_dict(), "schedule": schedule.as_dict(), "image_score":
                     f"max of the anomaly map after a {settings.filter_size}-px mean filter",
                     "device": str(torch_device)},
        **means, "std": stds, "per_type": per_type, "per_seed": per_seed, "train_images": train_counts,
        "test_images": test_images,
    }
    write_json(out / METRICS_FILE, metrics)
    return metrics
