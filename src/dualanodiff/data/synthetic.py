"""A built-in synthetic anomaly data set in MVTec AD layout: no download, exact masks, deterministic.

Two objects:

- `fabric`: a plain-weave canvas filling the frame (weave phase, angle and period jitter, twisted yarn,
  per-thread tone, fibre noise, a lighting gradient). Anomaly types `hole` (the fabric torn away, showing the
  underlayer (a table, a mat, wood) in the hole's shadow, with frayed thread ends and a rim of lifted, lighter
  fibres) and `stain` (a coffee, wine, oil or grease stain of irregular outline that tints the weave, darker
  at its drying ring).
- `washer`: a turned steel annulus on a plain dark background (position, size, rotation and lighting vary),
  with anisotropic highlights, turning marks, bevels and a drop shadow. Anomaly types `crack` (a dark,
  sometimes branching crack with bright chipped lips) and `rust` (a mottled orange-brown patch, only ever on
  the metal).

Each defect image is a normal image with the defect drawn on it; the mask is exactly the drawn region: every
pixel inside it changes and none outside does. Defects are sized for models that work at 64x64: they reach
across at least 13% of the image side, lines are at least about 6 pixels thick at 256, and no masked pixel is
near-black (each keeps a channel of at least about 0.25), so thresholding the anomaly part (image x mask)
recovers the mask.

Every image draws from its own `numpy.random.default_rng([seed, object, role, index])`, so the same seed
gives byte-identical PNGs.
"""

from __future__ import annotations

import itertools
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter, zoom
from tqdm import tqdm

from dualanodiff.errors import DataError, UserError
from dualanodiff.io import read_json, save_image, write_json

SYNTHETIC_FORMAT = "dualanodiff-synthetic/1"
MARKER_FILE = "synthetic.json"
OBJECTS: dict[str, tuple[str, ...]] = {"fabric": ("hole", "stain"), "washer": ("crack", "rust")}
MIN_SIZE, MAX_SIZE = 32, 1024
MIN_EXTENT = 0.13  # a defect reaches across at least this fraction of the side, to stay visible at 64x64


@dataclass
class _Scene:
    """A normal image (HxWx3 floats in [0, 1]) and what defects need to know about it."""

    image: np.ndarray
    light: np.ndarray  # HxW lighting factor, so that defects are lit like the surface around them
    surface: np.ndarray  # HxW bool: where a defect may be drawn
    relief: np.ndarray  # HxW in [0, 1]: fabric thread height, washer radial position (0 inner .. 1 outer)
    centre: tuple[float, float]  # (x, y), as fractions of the side
    radii: tuple[float, float]  # the washer's inner and outer radius (fabric: unused zeros)


@dataclass(frozen=True)
class SyntheticSample:
    """One rendered image: `clean` is the normal image the defect (if any) was drawn on; `mask` is None for
    normal images. Images are HxWx3 uint8, the mask HxW bool."""

    clean: np.ndarray
    image: np.ndarray
    mask: np.ndarray | None


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (x, y) as fractions of the side."""
    coords = (np.arange(size, dtype=np.float64) + 0.5) / size
    return np.meshgrid(coords, coords, indexing="xy")


def _noise(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    """Smooth noise of zero mean and unit standard deviation whose blobs are about `scale` (a fraction of the
    side) across. Wide blurs run on a coarser grid, then are interpolated up: the same look at a fraction of
    the cost."""
    sigma = max(scale * size, 0.5)
    factor = max(1, int(sigma // 2))
    field = gaussian_filter(rng.standard_normal((-(-size // factor),) * 2), sigma=sigma / factor, mode="wrap")
    if factor > 1:
        field = zoom(field, factor, order=1, grid_mode=True, mode="grid-wrap")[:size, :size]
    return (field - field.mean()) / (field.std() + 1e-12)


def _lighting(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, strength: float) -> np.ndarray:
    gx, gy = rng.uniform(-strength, strength, 2)
    return 1 + gx * (x - 0.5) + gy * (y - 0.5) + 0.03 * _noise(rng, x.shape[0], 0.25)


def _wobbly_radius(rng: np.random.Generator, angle: np.ndarray, amplitude: float,
                   orders: range) -> np.ndarray:
    """1 + a sum of random low harmonics of the polar angle: an irregular, star-shaped outline."""
    radius = np.ones_like(angle)
    for order in orders:
        phase = rng.uniform(0, 2 * np.pi)
        radius += rng.uniform(0, amplitude) / math.sqrt(order) * np.cos(order * angle + phase)
    return radius


def _fabric(rng: np.random.Generator, size: int) -> _Scene:
    x, y = _grid(size)
    angle = rng.uniform(-0.06, 0.06)
    period = rng.uniform(0.058, 0.068)  # 15 to 17 threads across: still a visible weave at 64x64
    u = (x * math.cos(angle) + y * math.sin(angle)) / period + rng.uniform(0, 2)
    v = (-x * math.sin(angle) + y * math.cos(angle)) / period + rng.uniform(0, 2)
    iu, iv = np.floor(u).astype(int), np.floor(v).astype(int)
    across_u, across_v = np.sin(np.pi * (u - iu)), np.sin(np.pi * (v - iv))
    warp_on_top = (iu + iv) % 2 == 0
    # A thread is round across and bulges where it passes over the crossing thread.
    height = np.where(warp_on_top, across_u**0.6 * (0.7 + 0.3 * across_v),
                      across_v**0.6 * (0.7 + 0.3 * across_u))
    # Twisted yarn: fine diagonal fibre lines along each thread; slubs: each thread a slightly different tone.
    twist = np.where(warp_on_top, np.sin(2 * np.pi * (3 * u + 1.5 * v)),
                     np.sin(2 * np.pi * (3 * v - 1.5 * u)))
    thread_tone = np.where(warp_on_top, rng.normal(0, 0.035, 97)[iu % 97], rng.normal(0, 0.035, 89)[iv % 89])
    shade = (0.70 + 0.30 * height + 0.04 * twist * height + thread_tone + 0.025 * _noise(rng, size, 0.002)
             - 0.03 * warp_on_top)
    light = _lighting(rng, x, y, 0.2)
    colour = np.array([0.74, 0.66, 0.52]) * rng.uniform(0.95, 1.05) * rng.uniform(0.985, 1.015, 3)
    image = np.clip(colour * (shade * light)[..., None], 0, 1)
    return _Scene(image, light, np.ones((size, size), bool), height, (0.5, 0.5), (0.0, 0.0))


def _backdrop(rng: np.random.Generator, size: int, varied: bool) -> np.ndarray:
    """The washer's background colour (H, W, 3): one dark slate, or, `varied`, any colour with coarse blotches
    (a set on which BCM's background conditioning has something to keep)."""
    if not varied:
        return np.array([0.20, 0.22, 0.25]) * rng.uniform(0.9, 1.1)
    return rng.uniform(0.05, 0.55, 3) * (1 + 0.25 * _noise(rng, size, 0.08))[..., None]


def _washer(rng: np.random.Generator, size: int, varied: bool = False) -> _Scene:
    x, y = _grid(size)
    cx, cy = 0.5 + rng.uniform(-0.03, 0.03, 2)
    outer = rng.uniform(0.36, 0.40)
    inner = outer * rng.uniform(0.40, 0.46)
    rotation = rng.uniform(0, 2 * np.pi)
    light_angle = -2.3 + rng.uniform(-0.25, 0.25)  # the lamp is upper left, give or take
    light = _lighting(rng, x, y, 0.15)
    r, phi = np.hypot(x - cx, y - cy), np.arctan2(y - cy, x - cx)
    pixel = 1 / size

    def ring_coverage(r: np.ndarray) -> np.ndarray:  # one-pixel anti-aliased annulus
        return np.clip((outer - r) / pixel + 0.5, 0, 1) * np.clip((r - inner) / pixel + 0.5, 0, 1)

    shift = 0.02 * np.array([-math.cos(light_angle), -math.sin(light_angle)])
    shifted = ring_coverage(np.hypot(x - cx - shift[0], y - cy - shift[1]))
    shadow = gaussian_filter(shifted, sigma=0.012 * size)
    background = (_backdrop(rng, size, varied)
                  * ((light + 0.012 * _noise(rng, size, 0.003)) * (1 - 0.45 * shadow))[..., None])

    # Turned steel: a bow-tie highlight across the light, concentric turning marks that turn with the part,
    # bevels lit on the side facing the lamp (outer edge) or facing away from it (inner edge).
    across = (r - inner) / (outer - inner)
    wobble = _wobbly_radius(rng, phi - rotation, 0.9, range(1, 7)) - 1
    bevel = 0.018
    metal = (rng.uniform(0.58, 0.66) * (0.72 + 0.38 * np.cos(phi - light_angle) ** 2)
             + 0.035 * np.sin(2 * np.pi * r * size / 3.3 + 1.5 * wobble)
             + 0.018 * _noise(rng, size, 0.0015)
             + 0.22 * np.cos(phi - light_angle) * np.clip(1 - (outer - r) / bevel, 0, 1)
             - 0.18 * np.cos(phi - light_angle) * np.clip(1 - (r - inner) / bevel, 0, 1))
    metal = np.clip(np.array([0.97, 1.0, 1.04]) * (metal * light)[..., None], 0, 1)
    coverage = ring_coverage(r)[..., None]
    image = np.clip(background * (1 - coverage) + metal * coverage, 0, 1)
    margin = max(0.012, 2.5 * pixel)
    surface = (r <= outer - margin) & (r >= inner + margin)
    return _Scene(image, light, surface, np.clip(across, 0, 1), (cx, cy), (inner, outer))


def _centre(rng: np.random.Generator, scene: _Scene) -> tuple[float, float]:
    """A defect centre: away from the fabric's border, or in the middle band of the washer's ring."""
    if scene.radii == (0.0, 0.0):
        return tuple(rng.uniform(0.22, 0.78, 2))
    inner, outer = scene.radii
    angle, radius = rng.uniform(0, 2 * np.pi), inner + (outer - inner) * rng.uniform(0.35, 0.65)
    return scene.centre[0] + radius * math.cos(angle), scene.centre[1] + radius * math.sin(angle)


_BACKINGS = np.array([[0.30, 0.33, 0.48],   # blue-grey table
                      [0.30, 0.40, 0.33],   # green cutting mat
                      [0.46, 0.34, 0.27]])  # brown wood


def _hole(rng: np.random.Generator, scene: _Scene) -> tuple[np.ndarray, np.ndarray]:
    size = scene.image.shape[0]
    x, y = _grid(size)
    cx, cy = _centre(rng, scene)
    radius, aspect, turn = rng.uniform(0.065, 0.11), rng.uniform(0.65, 1.0), rng.uniform(0, np.pi)
    r, phi = np.hypot(x - cx, y - cy), np.arctan2(y - cy, x - cx)
    stretch = np.hypot(np.cos(phi - turn), np.sin(phi - turn) / aspect)  # an elliptic tear, not always round
    outline = radius / stretch * _wobbly_radius(rng, phi, 0.22, range(2, 6))
    edge = outline * (1 - 0.2 * scene.relief)  # threads on top reach further in: a frayed edge
    hole = r < edge
    rim = ~hole & (r < outline + max(0.022, 3 / size))
    light_angle = rng.uniform(-np.pi, np.pi)
    depth = np.clip((edge - r) / radius, 0, 1)
    shadow = 1 - 0.25 * np.exp(-depth / 0.2) * (0.5 + 0.5 * np.cos(phi - light_angle))
    underlayer = _BACKINGS[rng.integers(len(_BACKINGS))] * rng.uniform(0.92, 1.08) * (
        (scene.light + 0.03 * _noise(rng, size, 0.01)) * shadow)[..., None]
    lifted = np.clip(scene.image * (1.22 + 0.08 * np.tanh(_noise(rng, size, 0.003)))[..., None], 0, 1)
    image = np.where(hole[..., None], underlayer, np.where(rim[..., None], lifted, scene.image))
    return image, hole | rim


_STAIN_COLOURS = np.array([[0.58, 0.40, 0.24],   # coffee
                           [0.58, 0.24, 0.32],   # red wine
                           [0.44, 0.42, 0.34],   # machine oil
                           [0.46, 0.52, 0.32]])  # green grease


def _stain(rng: np.random.Generator, scene: _Scene) -> tuple[np.ndarray, np.ndarray]:
    size = scene.image.shape[0]
    x, y = _grid(size)
    cx, cy = _centre(rng, scene)
    radius, aspect, turn = rng.uniform(0.075, 0.12), rng.uniform(0.6, 1.0), rng.uniform(0, np.pi)
    a = ((x - cx) * math.cos(turn) + (y - cy) * math.sin(turn)) / radius
    b = (-(x - cx) * math.sin(turn) + (y - cy) * math.cos(turn)) / (radius * aspect)
    rr = np.hypot(a, b)
    outline = _wobbly_radius(rng, np.arctan2(b, a), 0.1, range(3, 8)) + 0.08 * _noise(rng, size, 0.02)
    stain = rr < outline
    # Coffee-ring drying: most pigment at the edge; a little mottling inside.
    alpha = np.clip(0.7 + 0.2 * np.exp(-(outline - rr) / 0.12) + 0.05 * _noise(rng, size, 0.01), 0.6, 0.95)
    colour = _STAIN_COLOURS[rng.integers(len(_STAIN_COLOURS))] * rng.uniform(0.93, 1.07, 3)
    weave = scene.image.mean(axis=-1, keepdims=True) / 0.64  # the weave and the lighting show through
    stained = scene.image * (1 - alpha[..., None]) + np.clip(colour * weave, 0, 1) * alpha[..., None]
    return np.where(stain[..., None], stained, scene.image), stain


def _segment_distance(x: np.ndarray, y: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Distance from every pixel to the polyline through `points` (Nx2)."""
    distance = np.full(x.shape, np.inf)
    for (ax, ay), (bx, by) in itertools.pairwise(points):
        dx, dy = bx - ax, by - ay
        t = np.clip(((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy + 1e-12), 0, 1)
        distance = np.minimum(distance, np.hypot(x - ax - t * dx, y - ay - t * dy))
    return distance


def _walk(rng: np.random.Generator, start: tuple[float, float], heading: float, length: float,
          steps: int) -> np.ndarray:
    headings = heading + np.cumsum(rng.normal(0, 0.28, steps))
    moves = (length / steps) * np.stack([np.cos(headings), np.sin(headings)], axis=1)
    return np.vstack([start, start + np.cumsum(moves, axis=0)])


def _crack(rng: np.random.Generator, scene: _Scene) -> tuple[np.ndarray, np.ndarray]:
    size = scene.image.shape[0]
    x, y = _grid(size)
    width = max(rng.uniform(0.034, 0.044), 2 / size)
    cx, cy = _centre(rng, scene)
    radial = math.atan2(cy - scene.centre[1], cx - scene.centre[0])
    heading = radial + (0.0 if rng.random() < 0.5 else np.pi / 2) + rng.uniform(-0.5, 0.5)
    length = rng.uniform(0.2, 0.32)
    main = np.vstack([_walk(rng, (cx, cy), heading + np.pi, length / 2, 7)[::-1],
                      _walk(rng, (cx, cy), heading, length / 2, 7)[1:]])
    half_width = width / 2 * np.clip(1 + 0.2 * _noise(rng, size, 0.01), 0.8, 1.3)
    profile = _segment_distance(x, y, main) / half_width
    if rng.random() < 0.6:  # a thinner branch from one of the crack's bends
        fork = main[rng.integers(3, len(main) - 3)]
        branch = _walk(rng, tuple(fork), heading + rng.choice([-1, 1]) * rng.uniform(0.5, 1.0),
                       length * rng.uniform(0.35, 0.5), 5)
        profile = np.minimum(profile, _segment_distance(x, y, branch) / (0.75 * half_width))
    crack = (profile < 1) & scene.surface
    dark = np.array([0.34, 0.31, 0.29]) * (scene.light * (0.9 + 0.1 * profile))[..., None]
    lip = np.clip(scene.image + 0.18, 0, 1)  # the chipped edges catch the light
    cracked = np.where((profile < 0.75)[..., None], dark, lip)
    return np.where(crack[..., None], cracked, scene.image), crack


def _rust(rng: np.random.Generator, scene: _Scene) -> tuple[np.ndarray, np.ndarray]:
    size = scene.image.shape[0]
    x, y = _grid(size)
    cx, cy = _centre(rng, scene)
    field = (1 - np.hypot(x - cx, y - cy) / rng.uniform(0.08, 0.11) + 0.3 * _noise(rng, size, 0.02)
             + 0.12 * _noise(rng, size, 0.005))
    rust = (field > 0.2) & scene.surface
    mottle = 0.5 + 0.5 * np.tanh(1.5 * _noise(rng, size, 0.01))[..., None]
    bright = np.array([0.74, 0.38, 0.12]) * rng.uniform(0.92, 1.05, 3)
    deep = np.array([0.50, 0.22, 0.08]) * rng.uniform(0.92, 1.05, 3)
    grain = 1 + 0.08 * _noise(rng, size, 0.0015)
    colour = np.clip((deep + (bright - deep) * mottle) * (scene.light * grain)[..., None], 0, 1)
    alpha = np.clip(0.65 + 2 * (field - 0.2), 0.65, 1)[..., None]  # thinner at the patch's edge
    rusted = scene.image * (1 - alpha) + colour * alpha
    return np.where(rust[..., None], rusted, scene.image), rust


_SCENES: dict[str, Callable[[np.random.Generator, int], _Scene]] = {"fabric": _fabric, "washer": _washer}
BACKGROUNDS = ("plain", "varied")
_DEFECTS: dict[str, Callable[[np.random.Generator, _Scene], tuple[np.ndarray, np.ndarray]]] = {
    "hole": _hole, "stain": _stain, "crack": _crack, "rust": _rust}


def extent(mask: np.ndarray) -> float:
    """How far a mask reaches across, as a fraction of the image side: the longer side of its bounding box."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return 0.0
    return (max(np.ptp(rows), np.ptp(cols)) + 1) / max(mask.shape)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)


def render(object: str, anomaly: str | None, rng: np.random.Generator, size: int,
           backgrounds: str = "plain") -> SyntheticSample:
    """One image of `object` ("fabric" or "washer"), with a defect of type `anomaly`, or normal when None;
    `backgrounds` "varied" gives each washer a background of its own."""
    scene = _washer(rng, size, varied=True) if object == "washer" and backgrounds == "varied" else \
        _SCENES[object](rng, size)
    clean = _to_uint8(scene.image)
    if anomaly is None:
        return SyntheticSample(clean, clean, None)
    while True:  # redraw the rare defect that comes out too small to see at 64x64
        image, mask = _DEFECTS[anomaly](rng, scene)
        if extent(mask) >= MIN_EXTENT:
            return SyntheticSample(clean, _to_uint8(image), mask)


def _read_marker(path: Path) -> object:
    try:
        return read_json(path)
    except (UnicodeDecodeError, ValueError):  # a damaged marker: the set is rewritten
        return None


def write_synthetic(out: str | Path, *, seed: int = 0, size: int = 256, train_count: int = 60,
                    test_good_count: int = 8, anomaly_count: int = 12, backgrounds: str = "plain") -> Path:
    """Write the synthetic data set in MVTec AD layout into `out` and return `out`: per object, `train_count`
    normal training images, `test_good_count` normal test images and `anomaly_count` images with masks per anomaly
    type, all `size` x `size` PNGs. The set is built in a hidden folder beside `out` and renamed into place when
    complete, with `out/synthetic.json` recording the settings: a folder that already holds the same settings is
    left as it is, one holding another synthetic set is replaced, and any other non-empty folder is refused.
    """
    out = Path(out)
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise UserError(f"--size {size}: must be between {MIN_SIZE} and {MAX_SIZE} pixels")
    if seed < 0:
        raise UserError(f"--seed {seed}: must be at least 0")
    if min(train_count, test_good_count, anomaly_count) < 1:
        raise UserError("the synthetic data set needs at least one image of each kind")
    if backgrounds not in BACKGROUNDS:
        raise UserError(f"--backgrounds {backgrounds}: choose one of {', '.join(BACKGROUNDS)}")
    settings = {"format": SYNTHETIC_FORMAT, "seed": seed, "size": size, "train_count": train_count,
                "test_good_count": test_good_count, "anomaly_count": anomaly_count,
                "objects": {name: list(types) for name, types in OBJECTS.items()}}
    if backgrounds != "plain":  # (a plain set's marker stays what it always was)
        settings["backgrounds"] = backgrounds
    marker = out / MARKER_FILE
    if marker.is_file() and _read_marker(marker) == settings:
        return out
    if out.exists() and not (out.is_dir() and (marker.is_file() or not any(out.iterdir()))):
        raise DataError(f"{out}: exists and is not a synthetic data set; choose a new or empty folder")

    jobs = []  # (object, anomaly or None, role, index, image path, mask path or None)
    for object_index, (name, types) in enumerate(OBJECTS.items()):
        jobs += [(object_index, name, None, 0, i, Path(name, "train", "good", f"{i:03d}.png"), None)
                 for i in range(train_count)]
        jobs += [(object_index, name, None, 1, i, Path(name, "test", "good", f"{i:03d}.png"), None)
                 for i in range(test_good_count)]
        for role, anomaly in enumerate(types, start=2):
            jobs += [(object_index, name, anomaly, role, i, Path(name, "test", anomaly, f"{i:03d}.png"),
                      Path(name, "ground_truth", anomaly, f"{i:03d}_mask.png")) for i in range(anomaly_count)]

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        for object_index, name, anomaly, role, index, image_path, mask_path in tqdm(
                jobs, desc="synthetic data", unit="image", disable=None):
            sample = render(name, anomaly, np.random.default_rng([seed, object_index, role, index]), size,
                            backgrounds)
            save_image(staging / image_path, sample.image)
            if mask_path is not None:
                save_image(staging / mask_path, sample.mask.astype(np.uint8) * 255)
        write_json(staging / MARKER_FILE, settings)
        if out.exists():
            previous = staging.with_name(staging.name + ".old")
            os.rename(out, previous)
            os.rename(staging, out)
            shutil.rmtree(previous)
        else:
            os.rename(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
