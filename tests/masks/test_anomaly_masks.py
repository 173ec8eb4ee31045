"""Mask methods and the per-sample figures."""

import numpy as np
import pytest

from dualanodiff.errors import UserError
from dualanodiff.masks.anomaly import (
    AttentionSegmenter,
    Segmenter,
    ThresholdSegmenter,
    load_segmenter,
    mask_figures,
    otsu_threshold,
)


def _sample(size=64):
    """An image with a bright square defect, and its anomaly part: black outside the defect, faint noise there."""
    rng = np.random.default_rng(0)
    image = np.full((size, size, 3), 120, np.uint8)
    truth = np.zeros((size, size), bool)
    truth[20:36, 24:44] = True
    image[truth] = (200, 90, 40)
    part = (rng.integers(0, 12, (size, size, 3))).astype(np.uint8)  # the anomaly branch's near-black outside
    part[truth] = image[truth]
    part[5, 5] = 255  # a one-pixel speck that clean-up must drop
    return image, part, truth


def test_threshold_recovers_the_defect_and_drops_specks():
    image, part, truth = _sample()
    mask = ThresholdSegmenter()(image, part, None)
    assert not mask[5, 5]
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou > 0.9


def test_clean_up_keeps_second_defects_but_drops_specks_next_to_a_large_one():
    image, part, _ = _sample()  # the defect: 16 x 20 = 320 pixels
    part[50:60, 50:60] = 200  # a second defect, 100 pixels: kept
    part[2:5, 58:63] = 200  # a corner speck, 15 pixels (above min_pixels, under a tenth of the defect): dropped
    mask = ThresholdSegmenter()(image, part, None)
    assert mask[55, 55] and mask[25, 30] and not mask[3, 60]


def test_threshold_rises_above_a_grey_background():
    image, part, truth = _sample()
    part[~truth] = 40  # the anomaly branch drew its background dark grey (0.16) instead of black
    mask = ThresholdSegmenter()(image, part, None)
    assert (mask & truth).sum() / (mask | truth).sum() > 0.9


def test_threshold_fills_dark_holes_inside_the_defect():
    image, part, _truth = _sample()
    part[26:30, 30:34] = 0  # a dark spot inside the anomaly
    assert ThresholdSegmenter()(image, part, None)[27, 31]


def test_attention_masks_threshold_the_map_with_otsu():
    image, part, truth = _sample()
    attention = np.where(truth, 0.8, 0.1) + np.random.default_rng(1).normal(0, 0.02, truth.shape)
    mask = AttentionSegmenter()(image, part, np.clip(attention, 0, 1))
    assert (mask == truth).mean() > 0.98
    with pytest.raises(ValueError):
        AttentionSegmenter()(image, part, None)


@pytest.mark.parametrize(("side", "centre"), [(64, (40, 22)), (64, (12, 50)), (256, (90, 170))])
def test_attention_masks_lie_where_the_map_looks(side, centre):
    """A Gaussian bump at a known place on a noisy, uneven map: the mask covers the bump's core (above half its
    height), stays on the bump (above a tenth of it), and is centred on it."""
    rng = np.random.default_rng(2)
    y, x = np.mgrid[0:side, 0:side]
    sigma = side / 12
    bump = np.exp(-((y - centre[0]) ** 2 + (x - centre[1]) ** 2) / (2 * sigma**2))
    attention = np.clip(0.1 + 0.05 * x / side + 0.8 * bump + rng.normal(0, 0.04, bump.shape), 0, 1)
    mask = AttentionSegmenter()(np.zeros((side, side, 3), np.uint8), np.zeros((side, side, 3), np.uint8),
                                attention)
    core = bump >= 0.5
    assert (mask & core).sum() >= 0.95 * core.sum() and (mask & (bump >= 0.1)).sum() >= 0.95 * mask.sum()
    assert np.hypot(*(np.argwhere(mask).mean(axis=0) - centre)) <= side / 32


def test_the_threshold_method_loads_with_no_arguments():
    segmenter = load_segmenter("threshold")
    assert isinstance(segmenter, ThresholdSegmenter) and not segmenter.needs_attention


def test_otsu_separates_two_modes():
    values = np.concatenate([np.full(100, 0.2), np.full(50, 0.7)])
    assert 0.2 < otsu_threshold(values) <= 0.7


def test_figures():
    image, part, truth = _sample()
    figures = mask_figures(image, part, truth)
    assert figures["mask_area"] == pytest.approx(truth.mean())
    assert figures["branch_agreement"] == 0.0  # the anomaly part equals the image inside the mask
    part[truth] = 0
    assert mask_figures(image, part, truth)["branch_agreement"] > 0.3
    assert mask_figures(image, part, np.zeros_like(truth)) == {"mask_area": 0.0, "branch_agreement": None}


class EverythingSegmenter:
    needs_attention = False

    def __call__(self, image, anomaly_part, attention):
        return np.ones(image.shape[:2], bool)


def make_everything_segmenter():
    return EverythingSegmenter()


def test_plugged_in_segmenters(monkeypatch):
    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).parent))
    segmenter = load_segmenter("test_anomaly_masks:make_everything_segmenter")
    assert isinstance(segmenter, Segmenter) and segmenter(*_sample()[:2], None).all()
    with pytest.raises(UserError, match="unknown mask method"):
        load_segmenter("magic")
    with pytest.raises(UserError, match="cannot load it"):
        load_segmenter("no_such_module:factory")
    with pytest.raises(UserError, match="must return"):
        load_segmenter("test_anomaly_masks:_sample")


def failing_factory():
    raise RuntimeError("no weights here\nsecond line")


def test_a_plug_in_whose_factory_fails_is_one_line(monkeypatch):
    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).parent))
    with pytest.raises(UserError, match=r"failing_factory\(\) failed \(RuntimeError: no weights here\)$"):
        load_segmenter("test_anomaly_masks:failing_factory")
    with pytest.raises(UserError, match=r"system\(\) failed \(TypeError"):
        load_segmenter("os:system")  # called without a command: refused, nothing runs
