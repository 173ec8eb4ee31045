"""The few-shot split of one anomaly type's images into training and held-out test images.

Rule (the MVTec AD protocol of SPEC section 5, made explicit): sort the n images by file name (plain string
order); the first ceil(n / 3) train, the other n - ceil(n / 3) test. So n = 1 gives 1 / 0 (the test side is
empty), 2 -> 1 / 1, 3 -> 1 / 2, 4 -> 2 / 2, 7 -> 3 / 4, 12 -> 4 / 8. Papers round differently (floor, ceil, an
off-by-one) and one baseline lets an image sit on both sides; here the sides never overlap, and a file name
given twice is an error. `train_count=K` takes the first K instead; it must leave at least one test image
(1 <= K <= n - 1), except that with n = 1 the only valid K is 1, the same as the default. n = 0 is an error
("too few images to train").
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dualanodiff.data.samples import AnomalySample
from dualanodiff.errors import DataError
from dualanodiff.io import read_json, write_json

SPLIT_FORMAT = "dualanodiff-split/1"


@dataclass(frozen=True)
class Split:
    train: list[AnomalySample]
    test: list[AnomalySample]


def split_rule_text(train_count: int | None = None) -> str:
    """How `make_split(samples, train_count)` chose, in words (for split.json and reports)."""
    if train_count is None:
        return "sorted by file name; the first ceil(n/3) train, the rest test"
    return f"sorted by file name; the first {train_count} train (train_count), the rest test"


def make_split(samples: list[AnomalySample], train_count: int | None = None) -> Split:
    """Split one anomaly type's samples by the rule of the module docstring."""
    ordered = sorted(samples, key=lambda sample: (sample.name, str(sample.image_path)))
    n = len(ordered)
    if n == 0:
        raise DataError("too few images to train: no anomaly images")
    counts = Counter(sample.name for sample in ordered)
    duplicates = sorted(name for name, count in counts.items() if count > 1)
    if duplicates:
        raise DataError(f"{ordered[0].image_path.parent}: the file name {duplicates[0]!r} appears twice; "
                        "a split by file name would let it sit on both sides")
    if train_count is None:
        train_count = math.ceil(n / 3)
    elif not (1 <= train_count <= max(1, n - 1)):
        raise DataError(f"{ordered[0].image_path.parent}: train count {train_count} does not fit {n} images "
                        f"(it must be between 1 and {max(1, n - 1)}, leaving at least one test image)")
    return Split(train=ordered[:train_count], test=ordered[train_count:])


def split_record(split: Split, *, object: str, anomaly: str, rule_text: str) -> dict[str, Any]:
    """A split as JSON: file names on both sides, the object, the type, the rule, and `train_count`, the number of
    training images (split.json and every GEN's meta.json hold this record)."""
    return {"format": SPLIT_FORMAT, "object": object, "anomaly": anomaly, "rule": rule_text,
            "train_count": len(split.train),
            "train": [sample.name for sample in split.train], "test": [sample.name for sample in split.test]}


def write_split(path: str | Path, split: Split, *, object: str, anomaly: str, rule_text: str) -> Path:
    """Record a split as split.json (atomically)."""
    return write_json(path, split_record(split, object=object, anomaly=anomaly, rule_text=rule_text))


def read_split(path: str | Path) -> dict[str, Any]:
    """Read a split.json written by `write_split`; a missing, malformed or overlapping one is a DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: split file not found")
    split = read_json(path)
    if not isinstance(split, dict) or split.get("format") != SPLIT_FORMAT:
        raise DataError(f"{path}: not a split file (no \"format\": \"{SPLIT_FORMAT}\")")
    for key in ("object", "anomaly", "rule", "train_count", "train", "test"):
        if key not in split:
            raise DataError(f"{path}: has no {key!r} entry")
    overlap = sorted(set(split["train"]) & set(split["test"]))
    if overlap:
        raise DataError(f"{path}: {overlap[0]!r} is on both the train and the test side")
    return split
