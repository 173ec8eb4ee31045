"""The threshold mask keeps what was drawn: scratches 2 to 9 px wide, dots of 6 to 20 px, dark and bright defects
and soft edges, at 256, 512 and 1024 px, each with IoU >= 0.8 against the drawing.

A sample is built the way the two branches draw one: an image I (a textured brown object on a black table) with
the defect painted in at coverage alpha, and the anomaly part I_a = alpha * I, black (0..3) outside the defect. What was
drawn is where alpha > 0.5.
"""

import functools

import numpy as np
import pytest
from scipy import ndimage

from dualanodiff.masks.anomaly import ThresholdSegmenter

SIDES = (256, 512, 1024)
OBJECT = np.array([150, 120, 90], np.float32)  # brightness 0.59
COLOURS = {"brown": (90, 60, 40), "dark": (13, 13, 13), "bright": (250, 245, 235)}  # 0.35, 0.05, 0.98
SUPERSAMPLE = 4


def _coverage(side: int, shape: str, size: float, *, slant: float = 0.0, soft: str = "hard") -> np.ndarray:
    """alpha in 0..1: a scratch (`size` px wide, a third of the image long, `slant` degrees off horizontal) or a
    dot (`size` px across) in the middle; "hard" edges, "aa" (antialiased: 4x4 supersampled) or "blur" (a
    Gaussian of 1.5 px on the hard drawing)."""
    steps = SUPERSAMPLE if soft == "aa" else 1
    half = side // 6 + 16  # the drawing lies in this square about the middle; supersample only there
    y, x = (np.mgrid[0:2 * half * steps, 0:2 * half * steps] + 0.5) / steps - half
    if shape == "dot":
        inside = np.hypot(y, x) <= size / 2
    else:
        angle = np.deg2rad(slant)
        along, across = x * np.cos(angle) + y * np.sin(angle), -x * np.sin(angle) + y * np.cos(angle)
        inside = (np.abs(across) <= size / 2) & (np.abs(along) <= side / 6)
    alpha = np.zeros((side, side))
    alpha[side // 2 - half:side // 2 + half, side // 2 - half:side // 2 + half] = (
        inside.reshape(2 * half, steps, 2 * half, steps).mean(axis=(1, 3)))
    return ndimage.gaussian_filter(alpha, 1.5) if soft == "blur" else alpha


@functools.cache
def _scene(side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scene, grain, black): the object (a textured brown disc on a black table), the defect's own grain, and
    the anomaly branch's black (0..3: not quite 0). The same for every test at one side."""
    rng = np.random.default_rng(0)
    texture = ndimage.gaussian_filter(rng.normal(0, 1, (side, side)), side / 64) * side / 8
    scene = OBJECT + np.clip(texture, -25, 25)[..., None] + rng.normal(0, 4, (side, side, 3))
    y, x = np.mgrid[0:side, 0:side] - side / 2
    table = np.hypot(y, x) > 0.45 * side
    scene[table] = rng.integers(0, 4, (int(table.sum()), 3))
    return scene, rng.normal(0, 1.5, (side, side, 3)), rng.integers(0, 4, (side, side, 3))


def _sample(alpha: np.ndarray, colour: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(I, I_a, drawn) for a defect of `colour` at coverage `alpha` on the object."""
    scene, grain, black = _scene(alpha.shape[0])
    cover = alpha[..., None]
    image = np.clip(cover * (np.array(COLOURS[colour], np.float32) + grain) + (1 - cover) * scene, 0, 255)
    part = cover * image + (1 - cover) * black
    return image.round().astype(np.uint8), part.round().astype(np.uint8), alpha > 0.5


def _iou(mask: np.ndarray, truth: np.ndarray) -> float:
    return float((mask & truth).sum() / (mask | truth).sum())


CASES = (
    [pytest.param("scratch", w, s, "hard", "brown", id=f"scratch-{w}px-{s}deg") for w in (2, 3, 5, 7, 9)
     for s in (0, 30)]
    + [pytest.param("dot", d, 0, "hard", "brown", id=f"dot-{d}px") for d in (6, 10, 14, 20)]
    + [pytest.param("dot", 16, 0, "hard", "dark", id="dark-dot"),
       pytest.param("scratch", 5, 30, "hard", "dark", id="dark-scratch"),
       pytest.param("dot", 16, 0, "hard", "bright", id="bright-dot"),
       pytest.param("scratch", 3, 30, "hard", "bright", id="bright-scratch")]
    + [pytest.param("scratch", w, 30, soft, "brown", id=f"{soft}-scratch-{w}px") for w in (3, 7)
       for soft in ("aa", "blur")]
    + [pytest.param("dot", d, 0, soft, c, id=f"{soft}-{c}-dot-{d}px") for d in (6, 14) for soft in ("aa", "blur")
       for c in ("brown", "bright")]
)


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize(("shape", "size", "slant", "soft", "colour"), CASES)
def test_the_mask_is_what_was_drawn(side, shape, size, slant, soft, colour):
    image, part, drawn = _sample(_coverage(side, shape, size, slant=slant, soft=soft), colour)
    mask = ThresholdSegmenter()(image, part, None)
    assert _iou(mask, drawn) >= 0.8


def _union(*alphas: np.ndarray) -> np.ndarray:
    return np.clip(sum(alphas), 0, 1)


def _shifted(alpha: np.ndarray, dy: int, dx: int) -> np.ndarray:
    return np.roll(alpha, (dy, dx), axis=(0, 1))


@pytest.mark.parametrize("side", SIDES)
def test_two_defects_of_different_sizes_both_stay_and_specks_go(side):
    """A large blob, a 10 px dot and a thin scratch beside it are three defects; a 3x3 speck is noise."""
    blob = _shifted(_coverage(side, "dot", side / 8), -side // 6, 0)
    dot = _shifted(_coverage(side, "dot", 10), side // 6, -side // 6)
    scratch = _shifted(_coverage(side, "scratch", 2, slant=60), 0, side // 5)
    speck = np.zeros((side, side))
    speck[side * 3 // 4:side * 3 // 4 + 3, side // 2:side // 2 + 3] = 1  # away from the others, on the object
    image, part, _ = _sample(_union(blob, dot, scratch, speck), "brown")
    mask = ThresholdSegmenter()(image, part, None)
    defects = [alpha > 0.5 for alpha in (blob, dot, scratch)]
    assert all((mask & drawn).sum() >= 0.9 * drawn.sum() for drawn in defects)
    assert _iou(mask, np.logical_or.reduce(defects)) >= 0.8
    assert not (mask & (speck > 0.5)).any()


@pytest.mark.parametrize("side", (64, *SIDES))
def test_a_black_table_and_a_dark_shadow_are_not_anomaly(side):
    """No defect drawn: the anomaly part is black (noisier than in the other tests) and the image holds a black
    table and a dark grey shadow (0.05, as dark as the dark defect) on the object. The mask stays empty."""
    image, _, _ = _sample(np.zeros((side, side)), "brown")
    rng = np.random.default_rng(1)
    shadow = _coverage(side, "dot", side / 5) > 0.5
    image[shadow] = rng.integers(10, 16, (int(shadow.sum()), 3))
    part = rng.integers(0, 12, image.shape).astype(np.uint8)
    assert not ThresholdSegmenter()(image, part, None).any()


def test_the_dark_route_is_what_finds_a_dark_defect():
    image, part, drawn = _sample(_coverage(512, "dot", 16), "dark")
    assert _iou(ThresholdSegmenter()(image, part, None), drawn) >= 0.8
    assert not ThresholdSegmenter(dark_margin=None)(image, part, None).any()
