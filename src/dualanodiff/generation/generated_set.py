"""The GEN folder: generated (anomaly image, anomaly part, mask) triplets, written atomically and resumably.

Layout (shared by `generate` and every `baseline`, read by `evaluate`, `report` and `sweep`):

    GEN/image/NNNN.png     the anomaly image I
    GEN/fg/NNNN.png        the anomaly part I_a (black outside the anomaly; `anomaly_part` in the API)
    GEN/mask/NNNN.png      the binary anomaly mask (0 / 255)
    GEN/samples/NNNN.json  the sample's record (seed, figures); written last, so it marks the sample complete
    GEN/meta.json          method, object, anomaly type, settings, and all records once the job is finished

A job that stops half-way leaves only complete samples behind (each file is renamed into place), and a re-run
with the same settings makes only the missing ones.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dualanodiff.data.images import load_rgb, read_mask
from dualanodiff.errors import DataError, UserError
from dualanodiff.io import read_json, save_image, write_json
from dualanodiff.viz import contact_sheet

FORMAT = "dualanodiff-generated/1"
META_FILE = "meta.json"
IMAGE_FOLDER = "image"
ANOMALY_PART_FOLDER = "fg"
MASK_FOLDER = "mask"
RECORD_FOLDER = "samples"
REJECTS_SHEET = "rejected.png"  # their contact sheet, beside meta.json
REJECTED_FOLDER = "rejected"  # the samples QC rejected, laid out as a GEN of their own under their seed index
ANOMALIB_FOLDERS = ("good", "good_test", "mask")  # what an anomalib export holds besides the types
_KINDS = (IMAGE_FOLDER, ANOMALY_PART_FOLDER, MASK_FOLDER)


@dataclass(frozen=True)
class GeneratedSample:
    index: int
    image_path: Path
    anomaly_part_path: Path
    mask_path: Path
    record: dict[str, Any]

    def load(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(image HxWx3 uint8, anomaly part HxWx3 uint8, mask HxW bool)."""
        image, part = np.asarray(load_rgb(self.image_path)), np.asarray(load_rgb(self.anomaly_part_path))
        mask = read_mask(self.mask_path)
        for path, shape in ((self.anomaly_part_path, part.shape[:2]), (self.mask_path, mask.shape)):
            if shape != image.shape[:2]:
                raise DataError(f"{path}: is {shape[1]}x{shape[0]} pixels but its image {self.image_path.name} "
                                f"is {image.shape[1]}x{image.shape[0]}")
        return image, part, mask


class GeneratedSet:
    """A GEN folder. `create` starts or resumes one; `open` reads a finished or partial one."""

    def __init__(self, root: str | Path, meta: dict[str, Any]):
        self.root = Path(root)
        self.meta = meta

    @property
    def object(self) -> str:
        return self.meta["object"]

    @property
    def anomaly(self) -> str:
        return self.meta["anomaly"]

    @property
    def method(self) -> str:
        return self.meta["method"]

    @classmethod
    def create(cls, root: str | Path, *, method: str, object: str, anomaly: str, settings: dict[str, Any],
               producer: str | None = None, **extra: Any) -> GeneratedSet:
        """Start a GEN folder, or resume one that was made with exactly the same settings by the same producer
        (for dualanodiff, the run's identity: a GEN never mixes the samples of two models)."""
        root = Path(root)
        meta = {"format": FORMAT, "method": method, "object": object, "anomaly": anomaly,
                "settings": settings, "producer": producer, **extra}
        meta_path = root / META_FILE
        if meta_path.exists():
            old = read_json(meta_path)
            if not isinstance(old, dict):
                raise UserError(f"{meta_path}: not a generated set's meta.json (a JSON object)")
            # A GEN that holds no sample yet (an earlier attempt failed) takes the new settings: nothing is mixed.
            if any((root / RECORD_FOLDER).glob("*.json")):
                for key in ("method", "object", "anomaly", "settings", "producer"):
                    if old.get(key) != meta[key]:
                        raise UserError(f"{root}: already holds samples made with another {key} "
                                        f"({old.get(key)!r} != {meta[key]!r}); choose a new --out or delete it")
                meta = {**old, **extra}
        else:
            stray = [d for d in _KINDS if (root / d).exists() and any((root / d).iterdir())]
            if stray:
                raise UserError(f"{root}: holds files but no meta.json; choose a new --out or delete it")
        write_json(meta_path, meta)
        return cls(root, meta)

    @classmethod
    def open(cls, root: str | Path) -> GeneratedSet:
        root = Path(root)
        meta_path = root / META_FILE
        if not meta_path.is_file():
            raise UserError(f"{root}: not a generated set (no meta.json)")
        meta = read_json(meta_path)
        for key in ("object", "anomaly", "method"):
            if key not in meta:
                raise UserError(f"{meta_path}: has no {key!r} entry")
        return cls(root, meta)

    def _path(self, kind: str, index: int, suffix: str = ".png") -> Path:
        return self.root / kind / f"{index:04d}{suffix}"

    def completed_indices(self) -> set[int]:
        folder = self.root / RECORD_FOLDER
        if not folder.is_dir():
            return set()
        return {int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit()}

    def write_sample(self, index: int, image: np.ndarray, part: np.ndarray, mask: np.ndarray,
                     record: dict[str, Any]) -> None:
        """Write one triplet; the record goes last so an interrupted write never counts as complete."""
        save_image(self._path(IMAGE_FOLDER, index), image)
        save_image(self._path(ANOMALY_PART_FOLDER, index), part)
        save_image(self._path(MASK_FOLDER, index), (np.asarray(mask) > 0).astype(np.uint8) * 255)
        write_json(self._path(RECORD_FOLDER, index, ".json"), {"index": index, **record})

    @property
    def rejected(self) -> GeneratedSet:
        """The samples QC rejected (GEN/rejected/, the same layout), each under its candidate index: sample i's
        k-th try is candidate i + k * num."""
        return GeneratedSet(self.root / REJECTED_FOLDER, {key: self.meta[key] for key in ("method", "object",
                                                                                         "anomaly")})

    def samples(self) -> list[GeneratedSample]:
        """The complete samples, in index order."""
        return [GeneratedSample(i, self._path(IMAGE_FOLDER, i), self._path(ANOMALY_PART_FOLDER, i),
                                self._path(MASK_FOLDER, i), read_json(self._path(RECORD_FOLDER, i, ".json")))
                for i in sorted(self.completed_indices())]

    def finalize(self, summary: dict[str, Any]) -> dict[str, Any]:
        """Gather every record and the summary into meta.json."""
        self.meta = {**self.meta, "num": len(self.completed_indices()),
                     "samples": [s.record for s in self.samples()], "summary": summary}
        write_json(self.root / META_FILE, self.meta)
        return self.meta

    def contact_sheet(self, path: str | Path, *, max_rows: int = 16, groups: int = 2,
                      title: str | None = None) -> Path:
        """A contact sheet of the first `max_rows` complete samples (image | anomaly part | mask overlay)."""
        samples = self.samples()[:max_rows]
        if not samples:
            raise ValueError(f"{self.root}: holds no complete samples")
        if title is None:
            title = f"{self.method}: {self.object} / {self.anomaly} ({len(samples)} samples)"
        return contact_sheet([sample.load() for sample in samples], path, title=title, groups=groups)

    def mvtec_folders(self, data_root: str | Path) -> tuple[Path, Path]:
        """ROOT/<object>/test/<anomaly>/ and ground_truth/<anomaly>/, made now: a target that cannot be written
        fails before any sample is generated."""
        object_root = Path(data_root) / self.object
        folders = object_root / "test" / self.anomaly, object_root / "ground_truth" / self.anomaly
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            if not os.access(folder, os.W_OK):
                raise UserError(f"--export-mvtec {data_root}: {folder} is not writable")
        return folders

    def export_anomalib(self, root: str | Path, normal_train: Iterable[Path], normal_test: Iterable[Path]) -> Path:
        """The pairs in the layout of anomalib's `Folder` datamodule: the real normal images in ROOT/good/ (training)
        and ROOT/good_test/ (testing), ROOT/<anomaly>/<anomaly>_NNNN.png and ROOT/mask/<anomaly>/<anomaly>_NNNN.png
        (stems unique across the types of one ROOT, so several GENs of an object can share it)."""
        if self.anomaly in ANOMALIB_FOLDERS:
            raise UserError(f"--export-anomalib: an anomaly type named {self.anomaly!r} would mix with the "
                            f"{', '.join(ANOMALIB_FOLDERS)} folders anomalib reads")
        root = Path(root)
        images, masks = root / self.anomaly, root / "mask" / self.anomaly
        for folder, normal in (("good", normal_train), ("good_test", normal_test)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            for path in normal:
                shutil.copyfile(path, root / folder / path.name)
        for folder in (images, masks):
            folder.mkdir(parents=True, exist_ok=True)
        for sample in self.samples():
            name = f"{self.anomaly}_{sample.index:04d}.png"
            shutil.copyfile(sample.image_path, images / name)
            shutil.copyfile(sample.mask_path, masks / name)
        return root

    def export_mvtec(self, data_root: str | Path) -> Path:
        """Copy the pairs into MVTec layout: ROOT/<object>/test/<anomaly>/ and ground_truth/<anomaly>/."""
        images, masks = self.mvtec_folders(data_root)
        for sample in self.samples():
            shutil.copyfile(sample.image_path, images / f"{sample.index:04d}.png")
            shutil.copyfile(sample.mask_path, masks / f"{sample.index:04d}_mask.png")
        return images.parents[1]
