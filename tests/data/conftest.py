"""Small hand-made data sets for the data-layer tests."""

from pathlib import Path

import numpy as np
import pytest

from dualanodiff.io import save_image


@pytest.fixture
def tiny_mvtec(tmp_path: Path) -> Path:
    """An MVTec AD tree with one object `widget`: 3 normal train, 1 normal test and 3 `scratch` images with
    masks, all 16x16 PNGs."""
    root = tmp_path / "mvtec"
    rng = np.random.default_rng(0)
    mask = np.zeros((16, 16), np.uint8)
    mask[4:10, 5:12] = 255
    for i in range(3):
        save_image(root / "widget/train/good" / f"{i:03d}.png", rng.integers(0, 256, (16, 16, 3), np.uint8))
        save_image(root / "widget/test/scratch" / f"{i:03d}.png", rng.integers(0, 256, (16, 16, 3), np.uint8))
        save_image(root / "widget/ground_truth/scratch" / f"{i:03d}_mask.png", mask)
    save_image(root / "widget/test/good/000.png", rng.integers(0, 256, (16, 16, 3), np.uint8))
    return root
