"""Data sources: an MVTec AD folder or a folder in a custom layout, behind one interface.

MVTec AD layout (Bergmann et al., CVPR 2019):

    ROOT/<object>/train/good/*.png                      normal training images
    ROOT/<object>/test/good/*.png                       normal test images
    ROOT/<object>/test/<anomaly>/*.png                  anomaly images of one type
    ROOT/<object>/ground_truth/<anomaly>/<stem>_mask.png  their masks

An object is a folder with a `train/good` folder; `test/good` is not an anomaly type. Any other layout is
described by a JSON layout file (see `dualanodiff.data.layout`).

In every image folder the files whose suffix is one of `IMAGE_SUFFIXES` (any case) are images; hidden files
(".name") and sub-folders are skipped; any other file is reported as an unsupported file type. Every list is
sorted by file name (plain string order). The listing methods raise a `DataError` on the first problem they
meet; `problems()` scans everything, decoding every image and mask, and returns all of them.
"""

from __future__ import annotations

import fnmatch
import math
import os
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tqdm import tqdm

from dualanodiff.data.images import is_supported_image, load_mask, load_rgb, unsupported_type_problem
from dualanodiff.data.layout import ANOMALY_PLACEHOLDER, LAYOUT_FILE_NAME, ROOT_PREFIX, Layout, read_layout
from dualanodiff.data.samples import AnomalySample
from dualanodiff.data.split import make_split
from dualanodiff.errors import DataError


@dataclass(frozen=True)
class _Scan:
    """What a folder listing found: the usable paths or samples, and the problems met on the way."""

    found: list[Any]
    problems: list[str]


def _list_images(folder: Path, pattern: str = "*") -> _Scan:
    """The images in `folder` whose file name matches `pattern` (case-insensitive), sorted by file name."""
    if not folder.is_dir():
        return _Scan([], [f"{folder}: folder not found"])
    images, problems = [], []
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if path.name.startswith(".") or path.is_dir() or not fnmatch.fnmatchcase(path.name.lower(),
                                                                                 pattern.lower()):
            continue
        if is_supported_image(path):
            images.append(path)
        else:
            problems.append(unsupported_type_problem(path))
    if not images and not problems:
        problems.append(f"{folder}: no images" + ("" if pattern == "*" else f" matching {pattern!r}"))
    return _Scan(images, problems)


def _raise_first(scan: _Scan, check_command: str) -> list[Any]:
    """The scan's findings, or a `DataError` with its first problem (and how many more there are)."""
    if scan.problems:
        more = len(scan.problems) - 1
        raise DataError(scan.problems[0] + (f" (and {more} more; run `{check_command}` for all)" if more else ""))
    return scan.found


def _content_problems(sample: AnomalySample) -> list[str]:
    """Decode an anomaly sample's image and mask: corrupt files, size mismatch, empty mask."""
    problems, size = [], None
    try:
        size = load_rgb(sample.image_path).size
    except DataError as error:
        problems.append(str(error))
    try:
        load_mask(sample.mask_path, size)
    except DataError as error:
        problems.append(str(error))
    return problems


def _image_problems(path: Path) -> list[str]:
    try:
        load_rgb(path)
    except DataError as error:
        return [str(error)]
    return []


class DataSource(ABC):
    """A data set of objects, each with normal images and anomaly images (with masks) of one or more types."""

    kind: str  # how `describe()` names the layout

    def __init__(self, root: Path):
        self.root = root

    @abstractmethod
    def objects(self) -> list[str]:
        """The objects' names, sorted."""

    @abstractmethod
    def _anomaly_folders(self, object: str) -> tuple[dict[str, Path], list[str]]:
        """Anomaly type -> folder of its images, and the problems met finding them."""

    @abstractmethod
    def _image_pattern(self, object: str) -> str:
        """The glob that picks images among the files of the object's folders."""

    @abstractmethod
    def _mask_path(self, object: str, anomaly: str, image: Path) -> Path:
        """Where the mask of `image` should be."""

    @abstractmethod
    def _normal_scans(self, object: str) -> tuple[_Scan, _Scan]:
        """Scans of the normal training images and the normal test images."""

    @property
    def check_command(self) -> str:
        """The command that lists every problem of this data set."""
        return f"dualanodiff data {self.root}"

    def _check_object(self, object: str) -> None:
        objects = self.objects()
        if object not in objects:
            raise DataError(f"{self.root}: unknown object {object!r} (objects: {', '.join(objects)})")

    def _folders(self, object: str) -> dict[str, Path]:
        self._check_object(object)
        return self._anomaly_folders(object)[0]

    def anomaly_types(self, object: str) -> list[str]:
        return sorted(self._folders(object))

    def _scan_anomaly(self, object: str, anomaly: str) -> _Scan:
        folders = self._folders(object)
        if anomaly not in folders:
            raise DataError(f"{self.root}: unknown anomaly type {anomaly!r} for object {object!r} "
                            f"(types: {', '.join(sorted(folders)) or 'none'})")
        images = _list_images(folders[anomaly], self._image_pattern(object))
        samples, problems = [], list(images.problems)
        for image in images.found:
            mask = self._mask_path(object, anomaly, image)
            if mask.is_file():
                samples.append(AnomalySample(image, mask))
            else:
                problems.append(f"{image}: no mask (expected {mask})")
        return _Scan(samples, problems)

    def anomaly_samples(self, object: str, anomaly: str) -> list[AnomalySample]:
        """The anomaly images of one type with their masks, sorted by file name."""
        return _raise_first(self._scan_anomaly(object, anomaly), self.check_command)

    def normal_train(self, object: str) -> list[Path]:
        self._check_object(object)
        return _raise_first(self._normal_scans(object)[0], self.check_command)

    def normal_test(self, object: str) -> list[Path]:
        self._check_object(object)
        return _raise_first(self._normal_scans(object)[1], self.check_command)

    def _selected(self, object: str | None) -> list[str]:
        if object is None:
            return self.objects()
        self._check_object(object)
        return [object]

    def problems(self, object: str | None = None) -> list[str]:
        """Every problem in the data set (or one object), one line each naming the file: a full scan that
        decodes every image and mask, shown with a progress bar on a terminal."""
        problems: list[str] = []
        samples: list[AnomalySample] = []
        normals: list[Path] = []
        for name in self._selected(object):
            folders, folder_problems = self._anomaly_folders(name)
            problems += folder_problems
            for anomaly in sorted(folders):
                scan = self._scan_anomaly(name, anomaly)
                problems += scan.problems
                samples += scan.found
            for scan in self._normal_scans(name):
                problems += scan.problems
                normals += scan.found
        checks = ([(_content_problems, sample) for sample in samples]
                  + [(_image_problems, path) for path in normals])
        for check, item in tqdm(checks, desc="checking images", unit="image", disable=None, leave=False):
            problems += check(item)
        return problems

    def describe(self, object: str | None = None, *, train_count: int | None = None) -> dict[str, Any]:
        """Counts per object and anomaly type, and the split of each type (`make_split` with `train_count`).

        Counts only the usable files; what is wrong is for `problems()` to say. A type that cannot be split
        has its reason under "split_problem" instead of "train" and "test".
        """
        objects = {}
        for name in self._selected(object):
            normal_train, normal_test = self._normal_scans(name)
            anomalies = {}
            for anomaly in sorted(self._anomaly_folders(name)[0]):
                samples = self._scan_anomaly(name, anomaly).found
                entry: dict[str, Any] = {"images": len(samples)}
                try:
                    split = make_split(samples, train_count)
                    entry.update(train=len(split.train), test=len(split.test))
                except DataError as error:
                    entry["split_problem"] = f"{name}/{anomaly}: {error}"
                anomalies[anomaly] = entry
            objects[name] = {"normal_train": len(normal_train.found), "normal_test": len(normal_test.found),
                             "anomalies": anomalies}
        return {"root": str(self.root), "layout": self.kind, "objects": objects}


class MVTecSource(DataSource):
    kind = "MVTec AD layout"

    def objects(self) -> list[str]:
        return sorted(path.name for path in self.root.iterdir()
                      if not path.name.startswith(".") and (path / "train" / "good").is_dir())

    def _anomaly_folders(self, object: str) -> tuple[dict[str, Path], list[str]]:
        test = self.root / object / "test"
        folders = {path.name: path for path in sorted(test.iterdir()) if path.is_dir()
                   and not path.name.startswith(".") and path.name != "good"} if test.is_dir() else {}
        return folders, [] if folders else [f"{test}: no anomaly type folders (besides good)"]

    def _image_pattern(self, object: str) -> str:
        return "*"

    def _mask_path(self, object: str, anomaly: str, image: Path) -> Path:
        return self.root / object / "ground_truth" / anomaly / f"{image.stem}_mask.png"

    def _normal_scans(self, object: str) -> tuple[_Scan, _Scan]:
        test_good = self.root / object / "test" / "good"
        return (_list_images(self.root / object / "train" / "good"),
                _list_images(test_good) if test_good.is_dir() else _Scan([], []))


class LayoutSource(DataSource):
    """A data set described by a layout file (`dualanodiff.data.layout`)."""

    def __init__(self, root: Path, layout: Layout):
        super().__init__(root)
        self.layout = layout
        self.kind = f"layout {layout.path}"

    def objects(self) -> list[str]:
        return sorted(self.layout.objects)

    @property
    def check_command(self) -> str:
        return f"dualanodiff data {self.root} --layout {self.layout.path}"

    def _normal_folders(self, object: str) -> set[Path]:
        entry = self.layout.objects[object]
        folders = (entry.normal, entry.normal_test_folder)
        return {Path(os.path.normpath(self.root / folder)) for folder in folders if folder is not None}

    def _anomaly_folders(self, object: str) -> tuple[dict[str, Path], list[str]]:
        entry = self.layout.objects[object]
        if entry.anomaly_folders is not None:
            return {name: self.root / folder for name, folder in entry.anomaly_folders.items()}, []
        # The pattern's placeholder sits in one folder name: list that folder's parent, match the names.
        parts = PurePosixPath(entry.anomaly_pattern).parts
        at = next(i for i, part in enumerate(parts) if ANOMALY_PLACEHOLDER in part)
        before, after = parts[at].split(ANOMALY_PLACEHOLDER)
        name_pattern = re.compile(re.escape(before) + "(.+)" + re.escape(after))
        parent = self.root.joinpath(*parts[:at])
        normal = self._normal_folders(object)
        folders = {}
        for candidate in sorted(parent.iterdir()) if parent.is_dir() else []:
            match = name_pattern.fullmatch(candidate.name)
            folder = candidate.joinpath(*parts[at + 1:])
            if (match and not candidate.name.startswith(".") and folder.is_dir()
                    and Path(os.path.normpath(folder)) not in normal):
                folders[match.group(1)] = folder
        problems = [] if folders else [f"{self.layout.path}: objects.{object}.anomalies: no folder under "
                                       f"{self.root} matches {entry.anomaly_pattern!r}"]
        return folders, problems

    def _image_pattern(self, object: str) -> str:
        return self.layout.objects[object].images

    def _escapes(self, path: Path) -> bool:
        """Whether `path` (after `..` and links) lies outside the data root: a layout file found in an
        untrusted data set must not pull in files from elsewhere."""
        return not path.resolve().is_relative_to(self.root.resolve())

    def _confined(self, scan: _Scan, key: str, paths: Any = lambda found: [found]) -> _Scan:
        kept, problems = [], list(scan.problems)
        for found in scan.found:
            outside = [path for path in paths(found) if self._escapes(path)]
            if outside:
                problems.append(f"{self.layout.path}: {key}: {outside[0]} lies outside the data root {self.root}")
            else:
                kept.append(found)
        return _Scan(kept, problems)

    def _scan_anomaly(self, object: str, anomaly: str) -> _Scan:
        return self._confined(super()._scan_anomaly(object, anomaly), f"objects.{object}.masks",
                              lambda sample: [sample.image_path, sample.mask_path])

    def _mask_path(self, object: str, anomaly: str, image: Path) -> Path:
        rule = self.layout.objects[object].masks
        base = self.root if rule.startswith(ROOT_PREFIX) else image.parent
        relative = rule.removeprefix(ROOT_PREFIX).format(stem=image.stem, name=image.name, anomaly=anomaly,
                                                          object=object)
        return Path(os.path.normpath(base / relative))

    def _normal_scans(self, object: str) -> tuple[_Scan, _Scan]:
        """The normal images; with `last_fraction` F the last floor(F x n) (by name) are the test ones."""
        entry = self.layout.objects[object]
        normal = self._confined(_list_images(self.root / entry.normal, entry.images), f"objects.{object}.normal")
        if entry.normal_test_folder is not None:
            return normal, self._confined(_list_images(self.root / entry.normal_test_folder, entry.images),
                                          f"objects.{object}.normal_test")
        held_out = math.floor((entry.normal_test_fraction or 0.0) * len(normal.found))
        keep = len(normal.found) - held_out
        return _Scan(normal.found[:keep], normal.problems), _Scan(normal.found[keep:], [])


def load_source(root: str | Path, layout: str | Path | None = None) -> DataSource:
    """Open the data set at `root`: in the layout described by the file `layout`, or by
    `root/dualanodiff-layout.json` when that exists, or else in MVTec AD layout."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: data folder not found")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    if layout is None and (root / LAYOUT_FILE_NAME).is_file():
        layout = root / LAYOUT_FILE_NAME
    if layout is not None:
        return LayoutSource(root, read_layout(layout))
    source = MVTecSource(root)
    if not source.objects():
        raise DataError(f"{root}: no objects found (an MVTec AD object is a folder with train/good/; for "
                        f"another layout pass --layout FILE or put a {LAYOUT_FILE_NAME} in the folder)")
    return source
