import numpy as np

from dualanodiff.evaluate.fidelity import area_ratio, grid_score, off_object_share


def test_the_grid_score_sees_a_4_px_grid_and_not_a_smooth_image():
    rng = np.random.default_rng(0)
    smooth = np.clip(rng.normal(128, 20, (64, 64, 3)), 0, 255).astype(np.uint8)
    blocks = np.kron(rng.integers(0, 255, (16, 16, 3)), np.ones((4, 4, 1))).astype(np.uint8)
    assert grid_score([smooth]) < 1.05
    assert grid_score([blocks]) > 3
    assert grid_score([blocks], period=5) < 1.5  # a grid of another period is not this one


def test_masks_off_the_object_and_their_areas():
    objects = np.zeros((10, 10), bool)
    objects[:, :5] = True
    mask = np.zeros((10, 10), bool)
    mask[0, 3:7] = True  # two pixels on, two off
    assert off_object_share([mask], [objects]) == 0.5
    assert off_object_share([np.zeros((10, 10), bool)], [objects]) == 0.0
    twice = mask | np.roll(mask, 1, axis=0)
    assert area_ratio([mask, mask], [twice]) == 0.5
