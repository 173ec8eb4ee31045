"""Model-free anomaly generators, written as GEN folders so they go through the same evaluation as the model.

- `croppaste`: the masked anomaly of a training-side anomaly image (a random one), randomly rotated by a multiple
  of 90 degrees and flipped, pasted onto a normal training image at a random place on the object, with a
  feathered edge; the mask follows the paste.
- `cutpaste`: CutPaste-scar (Li et al., CVPR 2021): a thin rectangle (2-16 x 10-25 px at 256 px, scaled with the
  resolution) cut from the normal image itself, colour-jittered (brightness, contrast, saturation, hue by up to
  10%), rotated by -45..45 degrees and pasted at a random place on the object.
- `perlin`: DRAEM (Zavrtanik et al., ICCV 2021): a Perlin-noise field (2^0..2^5 lattice cells per axis as DRAEM,
  but no cell under 8 px, DRAEM's finest at 256 px; randomly rotated) thresholded at 0.5 gives the mask; inside
  it a texture (half the time a randomly cropped, rotated and tone-altered region of another normal image,
  otherwise a procedural two-colour noise texture) is blended in with a random opacity in [0.2, 1], DRAEM's range.

Placement "on the object": for an object on a plain background (bottle, screw, ...) the object region of each
normal image comes from BCM's weight-free segmenter (`objects.BorderColourSegmenter`: far from the border colour
of the normal images; real holes, such as a washer's, stay background). On a texture (carpet, a magnetic tile)
it finds almost nothing, and the whole image counts as the object.

Every sample's mask is exactly the set of pixels whose blend weight is above 0.5 (for `cutpaste` and `perlin`:
every pixel that was changed at all), and is never empty. Sample i depends only on (seed, i) and the data, so a
run can stop and resume, and `--num` can grow later. All images are resized to `resolution` x `resolution`.

The GEN's meta.json records the split of the real anomaly images (`split`), the same for all three methods, so the
evaluation tests every method on the same held-out images; only `croppaste` reads the training side.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage
from torchvision.transforms import functional as TF

from dualanodiff.data import (
    DataSource,
    load_anomalies,
    load_images,
    make_split,
    resized_rgb,
    split_record,
    split_rule_text,
)
from dualanodiff.errors import UserError
from dualanodiff.generation.generated_set import GeneratedSet
from dualanodiff.masks.objects import BorderColourSegmenter
from dualanodiff.progress import progress

DEFAULT_RESOLUTION = 256
FEATHER_SIGMA = 1.0  # pixels of croppaste's soft edge
SCAR_WIDTH = (2.0, 16.0)  # CutPaste-scar size at 256 px
SCAR_LENGTH = (10.0, 25.0)
SCAR_ROTATION = 45.0
SCAR_JITTER = 0.1
PERLIN_MAX_EXPONENT = 5  # scales 2^0 .. 2^5 cells per side, as DRAEM
PERLIN_THRESHOLD = 0.5
PERLIN_OPACITY = (0.2, 1.0)
MAX_TRIES = 100  # redraws before giving up on a non-empty mask (never reached in practice)


@dataclass(frozen=True)
class BaselineData:
    """What the generators draw from, at the working resolution."""

    normals: np.ndarray  # uint8 (N, R, R, 3)
    normal_names: list[str]
    object_regions: np.ndarray  # bool (N, R, R)
    anomalies: list[tuple[str, np.ndarray, np.ndarray]]  # training side: (name, image, mask)

    @property
    def resolution(self) -> int:
        return self.normals.shape[1]


# ---------------------------------------------------------------------------------------------------------------
# Shared geometry.

def object_regions(normals: np.ndarray) -> np.ndarray:
    """Bool (N, R, R): where each normal image's object is (the whole image for a texture).

    BCM's weight-free segmenter (`objects.BorderColourSegmenter`, fit on these images' borders) finds an object on
    a plain background; on a texture it finds almost nothing (or everything), and then the whole image counts.
    """
    segmenter = BorderColourSegmenter().fit(list(normals))
    regions = np.ones(normals.shape[:3], bool)
    for index, image in enumerate(normals):
        region = segmenter(image)
        if 0.02 <= region.mean() <= 0.98:
            regions[index] = region
    return regions


def _place(shape: tuple[int, int], patch_mask: np.ndarray, region: np.ndarray,
           rng: np.random.Generator) -> tuple[int, int, float]:
    """Top-left corner for a patch so that its mask lies on `region` (the best of a few random tries)."""
    height, width = shape
    patch_height, patch_width = patch_mask.shape
    ys, xs = np.nonzero(region)
    best = (0, 0, -1.0)
    for _ in range(20):
        pick = rng.integers(len(ys))
        top = int(np.clip(ys[pick] - patch_height // 2, 0, height - patch_height))
        left = int(np.clip(xs[pick] - patch_width // 2, 0, width - patch_width))
        on_object = float(region[top:top + patch_height, left:left + patch_width][patch_mask].mean())
        if on_object > best[2]:
            best = (top, left, on_object)
        if on_object >= 0.95:
            break
    return best


def feathered_alpha(mask: np.ndarray, sigma: float = FEATHER_SIGMA) -> np.ndarray:
    """A blend weight that is > 0.5 exactly on `mask` and falls off smoothly across its edge."""
    soft = ndimage.gaussian_filter(mask.astype(np.float64), sigma)
    return np.where(mask, 0.5 + 0.5 * soft, 0.5 * soft)


# ---------------------------------------------------------------------------------------------------------------
# The three generators: (data, rng, normal index) -> (image, mask, record).

Sample = tuple[np.ndarray, np.ndarray, dict[str, Any]]


def croppaste(data: BaselineData, rng: np.random.Generator, normal: int) -> Sample:
    name, anomaly_image, anomaly_mask = data.anomalies[rng.integers(len(data.anomalies))]
    ys, xs = np.nonzero(anomaly_mask)
    margin = int(np.ceil(3 * FEATHER_SIGMA))  # room for the soft edge around the anomaly
    size = data.resolution
    top, bottom = max(0, ys.min() - margin), min(size, ys.max() + 1 + margin)
    left, right = max(0, xs.min() - margin), min(size, xs.max() + 1 + margin)
    patch = anomaly_image[top:bottom, left:right]
    patch_mask = anomaly_mask[top:bottom, left:right]
    quarter_turns, flip = int(rng.integers(4)), bool(rng.random() < 0.5)
    patch, patch_mask = np.rot90(patch, quarter_turns), np.rot90(patch_mask, quarter_turns)
    if flip:
        patch, patch_mask = patch[:, ::-1], patch_mask[:, ::-1]

    y, x, on_object = _place((size, size), patch_mask, data.object_regions[normal], rng)
    image = data.normals[normal].copy()
    window = (slice(y, y + patch_mask.shape[0]), slice(x, x + patch_mask.shape[1]))
    alpha = feathered_alpha(patch_mask)[..., None]
    image[window] = np.rint(alpha * patch + (1 - alpha) * image[window]).astype(np.uint8)
    mask = np.zeros((size, size), bool)
    mask[window] = patch_mask
    return image, mask, {"source_anomaly": name, "rotation": 90 * quarter_turns, "flip": flip,
                         "position": [y, x], "on_object": round(on_object, 3)}


def _color_jitter(patch: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    picture = Image.fromarray(patch)
    picture = TF.adjust_brightness(picture, float(rng.uniform(1 - strength, 1 + strength)))
    picture = TF.adjust_contrast(picture, float(rng.uniform(1 - strength, 1 + strength)))
    picture = TF.adjust_saturation(picture, float(rng.uniform(1 - strength, 1 + strength)))
    picture = TF.adjust_hue(picture, float(rng.uniform(-strength, strength)))
    return np.asarray(picture)


def cutpaste(data: BaselineData, rng: np.random.Generator, normal: int) -> Sample:
    size = data.resolution
    scale = size / 256
    width = max(1, round(rng.uniform(*SCAR_WIDTH) * scale))
    length = max(2, round(rng.uniform(*SCAR_LENGTH) * scale))
    source = data.normals[normal]
    region = data.object_regions[normal]
    # Cut from the object too, so a scar on a bottle is made of bottle, not of background.
    ys, xs = np.nonzero(region)
    pick = rng.integers(len(ys))
    top = int(np.clip(ys[pick] - length // 2, 0, size - length))
    left = int(np.clip(xs[pick] - width // 2, 0, size - width))
    patch = _color_jitter(source[top:top + length, left:left + width], rng, SCAR_JITTER)
    angle = float(rng.uniform(-SCAR_ROTATION, SCAR_ROTATION))
    # Nearest-neighbour rotation keeps every pasted pixel a real patch pixel and the mask exactly binary.
    patch = np.asarray(Image.fromarray(patch).rotate(angle, Image.Resampling.NEAREST, expand=True))
    patch_mask = np.asarray(Image.fromarray(np.full((length, width), 255, np.uint8)).rotate(
        angle, Image.Resampling.NEAREST, expand=True)) > 0
    patch_mask = patch_mask[: size, : size]
    patch = patch[: size, : size]
    y, x, on_object = _place((size, size), patch_mask, region, rng)
    image = source.copy()
    mask = np.zeros((size, size), bool)
    mask[y:y + patch_mask.shape[0], x:x + patch_mask.shape[1]] = patch_mask
    image[mask] = patch[patch_mask]
    return image, mask, {"cut_from": [top, left], "scar_size": [length, width], "angle": round(angle, 2),
                         "position": [y, x], "on_object": round(on_object, 3)}


def perlin_noise(size: int, cells: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A (size, size) Perlin noise field, values about in [-1, 1], with cells[0] x cells[1] lattice cells."""
    rows, columns = cells
    angles = 2 * np.pi * rng.random((rows + 1, columns + 1))
    gradients = np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    y = np.arange(size) * rows / size
    x = np.arange(size) * columns / size
    y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]

    def corner(dy: int, dx: int) -> np.ndarray:
        gradient = gradients[(y0 + dy)[:, None], (x0 + dx)[None, :]]
        return gradient[..., 0] * (fy - dy) + gradient[..., 1] * (fx - dx)

    def fade(t: np.ndarray) -> np.ndarray:
        return 6 * t**5 - 15 * t**4 + 10 * t**3

    u, v = fade(fx), fade(fy)
    top = corner(0, 0) * (1 - u) + corner(0, 1) * u
    bottom = corner(1, 0) * (1 - u) + corner(1, 1) * u
    return np.sqrt(2) * (top * (1 - v) + bottom * v)


def _perlin_mask(size: int, rng: np.random.Generator) -> tuple[np.ndarray, list[int], float]:
    # DRAEM: up to 32 cells at 256 px (8-px cells); the same finest cell size at other resolutions.
    largest = max(0, min(PERLIN_MAX_EXPONENT, int(np.log2(max(1, size // 8)))))
    cells = [2 ** int(rng.integers(0, largest + 1)) for _ in range(2)]
    angle = float(rng.uniform(-90, 90))
    noise = ndimage.rotate(perlin_noise(size, (cells[0], cells[1]), rng), angle, reshape=False, mode="reflect")
    return noise > PERLIN_THRESHOLD, cells, angle


_TONE_CHANGES: list[Callable[[Image.Image, np.random.Generator], Image.Image]] = [
    lambda picture, rng: TF.autocontrast(picture),
    lambda picture, rng: TF.equalize(picture),
    lambda picture, rng: TF.posterize(picture, int(rng.integers(3, 6))),
    lambda picture, rng: TF.solarize(picture, float(rng.integers(64, 192))),
    lambda picture, rng: TF.invert(picture),
    lambda picture, rng: TF.adjust_brightness(picture, float(rng.uniform(0.5, 1.5))),
    lambda picture, rng: TF.adjust_contrast(picture, float(rng.uniform(0.5, 1.5))),
]


def _texture(data: BaselineData, rng: np.random.Generator, normal: int) -> tuple[np.ndarray, str]:
    size = data.resolution
    if rng.random() < 0.5:
        other = normal
        if len(data.normals) > 1:  # another normal image than the one the texture goes on
            other = int(rng.integers(len(data.normals) - 1))
            other += other >= normal
        crop = int(rng.integers(size // 2, size + 1))
        top, left = (int(rng.integers(0, size - crop + 1)) for _ in range(2))
        region = np.rot90(data.normals[other][top:top + crop, left:left + crop], int(rng.integers(4)))
        picture = Image.fromarray(np.ascontiguousarray(region))
        for change in rng.choice(len(_TONE_CHANGES), size=3, replace=False):
            picture = _TONE_CHANGES[change](picture, rng)
        return resized_rgb(picture, size), f"normal:{data.normal_names[other]}"
    colours = rng.integers(0, 256, size=(2, 3)).astype(np.float64)
    cells = 2 ** int(rng.integers(2, max(3, int(np.log2(max(4, size // 2))) + 1)))
    mix = np.clip((perlin_noise(size, (cells, cells), rng) + 1) / 2, 0, 1)[..., None]
    return np.rint(colours[0] * (1 - mix) + colours[1] * mix).astype(np.uint8), "procedural"


def perlin(data: BaselineData, rng: np.random.Generator, normal: int) -> Sample:
    size = data.resolution
    for _ in range(MAX_TRIES):
        mask, cells, angle = _perlin_mask(size, rng)
        mask &= data.object_regions[normal]
        if mask.any():
            break
    else:
        raise RuntimeError(f"no non-empty Perlin mask in {MAX_TRIES} draws")
    texture, texture_source = _texture(data, rng, normal)
    opacity = float(rng.uniform(*PERLIN_OPACITY))
    image = data.normals[normal].copy()
    blended = np.rint((1 - opacity) * image + opacity * texture.astype(np.float64)).astype(np.uint8)
    image[mask] = blended[mask]
    return image, mask, {"perlin_cells": cells, "angle": round(angle, 2), "texture": texture_source,
                         "opacity": round(opacity, 3)}


GENERATORS: dict[str, Callable[[BaselineData, np.random.Generator, int], Sample]] = {
    "croppaste": croppaste, "cutpaste": cutpaste, "perlin": perlin,
}
METHODS = tuple(GENERATORS)


# ---------------------------------------------------------------------------------------------------------------
# Running one.

def _method_settings(method: str) -> dict[str, Any]:
    """The constants each method uses, recorded in meta.json so a GEN says how it was made."""
    if method == "croppaste":
        return {"feather_sigma": FEATHER_SIGMA, "patch_transform": "rot90 x flip"}
    if method == "cutpaste":
        return {"scar_width_at_256": list(SCAR_WIDTH), "scar_length_at_256": list(SCAR_LENGTH),
                "rotation": SCAR_ROTATION, "color_jitter": SCAR_JITTER}
    return {"max_scale_exponent": PERLIN_MAX_EXPONENT, "threshold": PERLIN_THRESHOLD,
            "opacity": list(PERLIN_OPACITY)}


def load_baseline_data(source: DataSource, object: str, training: list, resolution: int,
                       need_anomalies: bool) -> BaselineData:
    normal_paths = source.normal_train(object)
    normals = load_images(normal_paths, resolution, "normal images")
    anomalies = []
    if need_anomalies:
        images, masks = load_anomalies(training, resolution, "training anomalies")
        anomalies = [(sample.name, image, mask) for sample, image, mask in zip(training, images, masks, strict=True)
                     if mask.any()]
        if not anomalies:
            raise UserError(f"{object}: every training anomaly mask vanishes at {resolution} px; raise --resolution")
    return BaselineData(normals=normals, normal_names=[path.name for path in normal_paths],
                        object_regions=object_regions(normals),
                        anomalies=anomalies)


def generate_baseline(method: str, source: DataSource, object: str, anomaly: str, num: int, out: str | Path, *,
                      seed: int = 0, resolution: int = DEFAULT_RESOLUTION,
                      train_count: int | None = None) -> GeneratedSet:
    """Write (or complete) a GEN folder of `num` samples of `method` for one object and anomaly type."""
    if method not in GENERATORS:
        raise UserError(f"unknown baseline method {method!r} (choose from {', '.join(METHODS)})")
    if num < 1:
        raise UserError(f"--num {num}: must be at least 1")
    if resolution < 16:
        raise UserError(f"--resolution {resolution}: must be at least 16 pixels")
    split = make_split(source.anomaly_samples(object, anomaly), train_count)
    settings = {"seed": seed, "resolution": resolution, "train_count": train_count, **_method_settings(method)}
    generated = GeneratedSet.create(
        out, method=method, object=object, anomaly=anomaly, settings=settings, data_root=str(source.root),
        split=split_record(split, object=object, anomaly=anomaly, rule_text=split_rule_text(train_count)))
    started = time.monotonic()
    todo = [index for index in range(num) if index not in generated.completed_indices()]
    if todo:
        data = load_baseline_data(source, object, split.train, resolution, need_anomalies=method == "croppaste")
        generator = GENERATORS[method]
        for index in progress(todo, desc=f"{method} {object}/{anomaly}", unit="sample"):
            rng = np.random.default_rng([seed, index])
            normal = int(rng.integers(len(data.normals)))
            image, mask, record = generator(data, rng, normal)
            part = image * mask[..., None].astype(np.uint8)
            generated.write_sample(index, image, part, mask, {"seed": seed, "normal": data.normal_names[normal],
                                                              **record})
    generated.finalize({"requested": num, "seconds": round(time.monotonic() - started, 2),
                        "training_images": [s.name for s in split.train] if method == "croppaste" else []})
    return generated
