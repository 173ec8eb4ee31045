import numpy as np
import pytest
import torch

from dualanodiff.data.windows import (
    anomaly_extent,
    context_descriptor,
    crop_windows,
    jitter_side,
    object_position,
    place_window,
    window_side,
)


def test_a_window_of_the_model_s_side_is_cut_out_exactly():
    pixels = torch.rand(2, 3, 40, 40)
    cut = crop_windows(pixels, [1, 0], [(5, 7, 16), (0, 24, 16)], 16)
    assert torch.allclose(cut[0], pixels[1, :, 5:21, 7:23], atol=1e-6)
    assert torch.allclose(cut[1], pixels[0, :, 0:16, 24:40], atol=1e-6)


def test_a_large_window_is_averaged_down_not_aliased():
    stripes = torch.zeros(1, 1, 64, 64)
    stripes[..., ::2] = 1  # one-pixel stripes: point sampling at half size would see only one colour
    cut = crop_windows(stripes, [0], [(0, 0, 64)], 32)
    assert torch.allclose(cut, torch.full_like(cut, 0.5), atol=1e-5)


def test_a_turned_window_is_the_window_s_content_turned_the_other_way():
    pixels = torch.rand(2, 3, 40, 40)
    windows = [(5, 7, 16), (10, 12, 16)]
    plain = crop_windows(pixels, [1, 0], windows, 16)
    turned = crop_windows(pixels, [1, 0], windows, 16, turns=[90, 0])
    assert torch.equal(turned[1], plain[1])  # a window not turned is cut exactly as without turns
    # Turned a quarter counter-clockwise, the window holds its content a quarter clockwise.
    assert torch.allclose(turned[0], torch.rot90(plain[0], k=-1, dims=(-2, -1)), atol=1e-5)
    assert torch.allclose(crop_windows(pixels, [1], windows[:1], 16, turns=[-90]),
                          torch.rot90(plain[:1], k=1, dims=(-2, -1)), atol=1e-5)
    assert torch.equal(crop_windows(pixels, [1], windows[:1], 16, turns=[360]), plain[:1])


def test_a_turned_window_s_corners_come_from_around_it_and_its_centre_stays():
    image = torch.zeros(1, 1, 64, 64)
    image[..., 24:40, 24:40] = 1  # a square at the centre of the window below, with room around it
    cut = crop_windows(image, [0], [(16, 16, 32)], 32, turns=[45])[0, 0]
    assert cut[16, 16] > 0.99 and cut[:4, :4].max() < 0.01  # the centre kept; corners from around, not grey fill
    assert abs(cut.sum() - 256) < 8  # a diamond of the square's area
    edge = crop_windows(image, [0], [(0, 0, 32)], 32, turns=[30])[0, 0]  # a window at the image's corner
    assert torch.isfinite(edge).all() and edge.min() >= 0


def test_the_extent_side_and_placement_of_an_anomaly_window():
    mask = np.zeros((100, 100), bool)
    mask[10:14, 20:50] = True
    assert anomaly_extent(mask) == (12.0, 35.0, 30)
    assert window_side(30, 0.5, 16, 100) == 60
    assert window_side(3, 0.5, 16, 100) == 16  # a small defect: at least the model's side, never upscaled data
    assert window_side(90, 0.5, 16, 100) == 100
    assert place_window(12, 35, 60, 100, 100) == (0, 5, 60)  # pushed inside the image, not cut
    assert place_window(99, 99, 120, 100, 100) == (0, 0, 100)


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999])
def test_the_side_jitter_stays_in_range(draw):
    assert 16 <= jitter_side(40, draw, 16, 100) <= 100
    assert jitter_side(40, 0.5, 16, 100) == 40


def test_the_context_descriptor_tells_smooth_from_striped_surroundings_whatever_the_rotation():
    smooth = np.full((64, 64, 3), 120, np.uint8)
    stripes = np.zeros((64, 64, 3), np.uint8)
    stripes[:, ::4] = 240
    window = (0, 0, 64)
    rotated = context_descriptor(np.ascontiguousarray(stripes.transpose(1, 0, 2)), window)
    assert np.abs(context_descriptor(stripes, window) - rotated).sum() < 1e-6
    assert np.abs(context_descriptor(stripes, window) - context_descriptor(smooth, window)).sum() > 1
    hole = np.zeros((64, 64), bool)
    hole[:, :32] = True
    assert context_descriptor(stripes, window, exclude=hole).sum() == 2  # two histograms, each summing to 1


def _screw(angle: float) -> np.ndarray:
    """A screw-like mask turned by `angle` degrees about the image centre: a wide head (rows 20-35) and a long
    thin shank (rows 35-110)."""
    rows, columns = np.mgrid[:128, :128] + 0.5
    radians = np.deg2rad(angle)
    # the point of the unturned screw that lands here
    row = 64 + (rows - 64) * np.cos(radians) - (columns - 64) * np.sin(radians)
    column = 64 + (rows - 64) * np.sin(radians) + (columns - 64) * np.cos(radians)
    head = (row >= 20) & (row < 35) & (np.abs(column - 64) < 15)
    shank = (row >= 35) & (row < 110) & (np.abs(column - 64) < 5)
    return head | shank


@pytest.mark.parametrize("angle", [0, 90, 135, 200])
def test_a_place_s_position_on_an_elongated_object_runs_from_its_heavy_end_whatever_the_angle(angle):
    objects = _screw(angle)
    radians = np.deg2rad(angle)

    def turned(row, column):  # where the unturned screw's (row, column) lies after the turn
        return [64 + (row - 64) * np.cos(radians) + (column - 64) * np.sin(radians),
                64 - (row - 64) * np.sin(radians) + (column - 64) * np.cos(radians)]

    head, neck, tip = object_position(objects, [turned(22, 64), turned(40, 64), turned(108, 64)])
    assert head < 0.05 and 0.2 < neck < 0.3 and tip > 0.95


def test_a_place_s_position_on_a_round_object_runs_out_from_its_centre():
    rows, columns = np.mgrid[:64, :64] + 0.5
    radius = np.hypot(rows - 32, columns - 32)
    ring = (radius > 10) & (radius < 30)
    centre, middle, outline = object_position(ring, [[32, 32], [32, 52], [2.5, 32]])
    assert centre == 0 and abs(middle - 2 / 3) < 0.05 and outline > 0.95
