"""Training and test sets for the downstream evaluations, assembled from GEN folders and the real data.

The training side is generated: the GEN folders of one object (each GEN's meta.json names its object and anomaly
type). The test side is real and held out: for each anomaly type, the images on the test side of the split each
GEN recorded in its meta.json (`split`; recomputed with `make_split` and the GEN's `train_count` setting when a GEN
did not record one), intersected over the GENs of that type, so an image any generator trained on is never tested
on; plus the object's normal test images. Overlap between any generator's training images and the test images
(compared by file path, across all types) is refused outright.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dualanodiff.data import AnomalySample, DataSource, Split, make_split, resized_mask, resized_rgb
from dualanodiff.errors import UserError
from dualanodiff.generation.generated_set import GeneratedSet


def open_generated_sets(gen_dirs: Sequence[str | Path], object: str | None = None) -> list[GeneratedSet]:
    """Open GEN folders that all hold samples of `object` (default: the first folder's object), ordered by
    (anomaly type, method, path) so that results do not depend on the order they were given in."""
    if not gen_dirs:
        raise UserError("no generated folders given (--generated GEN_DIR ...)")
    sets = [GeneratedSet.open(path) for path in gen_dirs]
    object = object or sets[0].object
    seen: set[Path] = set()
    for generated in sets:
        if generated.object != object:
            raise UserError(f"{generated.root}: holds object {generated.object!r}, not {object!r}")
        if not generated.completed_indices():
            raise UserError(f"{generated.root}: holds no complete samples")
        resolved = generated.root.resolve()
        if resolved in seen:
            raise UserError(f"{generated.root}: given twice")
        seen.add(resolved)
    return sorted(sets, key=lambda g: (g.anomaly, g.method, str(g.root)))


def recorded_split(generated: GeneratedSet, source: DataSource) -> Split:
    """The split of real anomaly images this GEN's generator saw, matched to `source`'s samples by file name."""
    samples = source.anomaly_samples(generated.object, generated.anomaly)
    recorded = generated.meta.get("split")
    if not recorded:
        settings = generated.meta.get("settings") or {}
        return make_split(samples, settings.get("train_count"))
    by_name = {sample.name: sample for sample in samples}
    sides = {}
    for side in ("train", "test"):
        names = recorded.get(side)
        if not isinstance(names, list):
            raise UserError(f"{generated.root}/meta.json: split has no {side!r} list")
        unknown = [name for name in names if name not in by_name]
        if unknown:
            raise UserError(f"{generated.root}/meta.json: split names {unknown[0]!r}, which is not an anomaly image "
                            f"of {generated.object}/{generated.anomaly} in {source.root}")
        sides[side] = [by_name[name] for name in names]
    return Split(train=sides["train"], test=sides["test"])


@dataclass(frozen=True)
class HeldOut:
    """The real test side of an evaluation: anomalies per type (sorted by type) and the normal test images."""

    anomalies: dict[str, list[AnomalySample]]
    normal: list[Path]

    @property
    def types(self) -> list[str]:
        return list(self.anomalies)


def held_out(source: DataSource, generated: Sequence[GeneratedSet], *, need_normal: bool = True) -> HeldOut:
    """The held-out real images for the anomaly types the GENs hold (see the module docstring)."""
    object = generated[0].object
    splits = {generated_set.root: recorded_split(generated_set, source) for generated_set in generated}
    trained_on = {sample.image_path: generated_set for generated_set in generated
                  for sample in splits[generated_set.root].train}
    anomalies = {}
    for anomaly in sorted({generated_set.anomaly for generated_set in generated}):
        test_sides = [{sample.image_path: sample for sample in splits[g.root].test}
                      for g in generated if g.anomaly == anomaly]
        common = set.intersection(*(set(side) for side in test_sides))
        test = sorted((test_sides[0][path] for path in common), key=lambda sample: sample.name)
        for sample in test:
            if sample.image_path in trained_on:
                raise UserError(f"{trained_on[sample.image_path].root}: its generator trained on "
                                f"{sample.image_path}, which is a test image; the evaluation would leak")
        if not test:
            raise UserError(f"{object}/{anomaly}: no held-out real anomaly images left to test on "
                            f"(the GENs' recorded splits leave none)")
        anomalies[anomaly] = test
    normal = source.normal_test(object) if need_normal else []
    if need_normal and not normal:
        raise UserError(f"{source.root}: object {object!r} has no normal test images, which the image-level "
                        "metrics need")
    return HeldOut(anomalies=anomalies, normal=normal)


def load_generated(generated: GeneratedSet, size: int, *, training: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, size, size, 3) and bool masks (N, size, size) of a GEN folder's complete samples. As
    `training` data, a sample whose mask is empty is left out (it would teach "no defect here" with an anomaly
    image) and the count is said."""
    images, masks, samples = [], [], generated.samples()
    for sample in tqdm(samples, desc=f"{generated.method}/{generated.anomaly}", leave=False):
        image, _, mask = sample.load()
        if training and not mask.any():
            continue
        images.append(resized_rgb(image, size))
        masks.append(resized_mask(mask, size))
    left_out = len(samples) - len(images)
    if left_out:
        print(f"{generated.root}: {left_out} sample(s) with an empty mask left out of the training data")
    return (np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8),
            np.stack(masks) if masks else np.zeros((0, size, size), bool))
