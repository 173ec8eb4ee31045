"""The training examples: tensors, value ranges, the anomaly part, resizing, refusals."""

import numpy as np
import pytest
import torch

from dualanodiff.data import (
    AnomalySample,
    load_anomalies,
    load_images,
    load_pixels,
    load_source,
    load_training_examples,
    to_uint8,
)
from dualanodiff.errors import DataError
from dualanodiff.io import save_image


@pytest.fixture
def rust_samples(synthetic_root):
    return load_source(synthetic_root).anomaly_samples("washer", "rust")[:3]


def test_items_are_float_tensors_in_range(rust_samples):
    examples = load_training_examples(rust_samples, 32)
    assert len(examples) == 3
    item = {"image": examples.images[1], "mask": examples.masks[1], "anomaly_part": examples.parts[1]}
    assert item["image"].shape == (3, 32, 32) and item["anomaly_part"].shape == (3, 32, 32)
    assert item["mask"].shape == (1, 32, 32)
    assert all(value.dtype == torch.float32 for value in item.values())
    assert item["image"].min() >= -1 and item["image"].max() <= 1
    assert set(item["mask"].unique().tolist()) == {0.0, 1.0}
    inside = item["mask"].bool().expand(3, -1, -1)
    assert (item["anomaly_part"][~inside] == -1).all()  # black outside the mask
    assert torch.allclose(item["anomaly_part"][inside], item["image"][inside])
    # Rust is orange-brown: red well above blue in the anomaly part.
    part = (item["anomaly_part"] + 1) / 2
    assert (part[0][inside[0]] - part[2][inside[0]]).mean() > 0.25


def test_resizing_filters(tmp_path):
    # A 4x4 checkerboard of 0 / 255 image cells downscaled with antialiasing becomes grey; the mask stays binary.
    image = np.kron(np.indices((4, 4)).sum(0) % 2, np.ones((8, 8))).astype(np.uint8) * 255
    mask = np.zeros((32, 32), np.uint8)
    mask[:16] = 255
    sample = AnomalySample(save_image(tmp_path / "i.png", np.stack([image] * 3, -1)),
                           save_image(tmp_path / "m.png", mask))
    examples = load_training_examples([sample], 2)
    assert examples.images[0].abs().max() < 0.5
    assert examples.masks[0, 0].tolist() == [[1.0, 1.0], [0.0, 0.0]]


def test_training_sees_the_pixels_the_evaluation_loads(tmp_path):
    # One resize for every working-resolution image: what the model trains on (and the canvas paints with) is what
    # the evaluation and the baselines load, bit for bit, so that no pair is sharper than the real images.
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (96, 96, 3), np.uint8)
    mask = np.zeros((96, 96), np.uint8)
    mask[20:60, 30:50] = 255
    sample = AnomalySample(save_image(tmp_path / "i.png", image), save_image(tmp_path / "m.png", mask))
    examples = load_training_examples([sample], 40)
    images, masks = load_anomalies([sample], 40, "test")
    assert np.array_equal(to_uint8(examples.images), images)
    assert np.array_equal(examples.masks[:, 0].bool().numpy(), masks)
    assert np.array_equal(to_uint8(load_pixels([tmp_path / "i.png"], 40)), load_images([tmp_path / "i.png"], 40, "x"))


def test_grayscale_images_become_three_equal_channels(tmp_path):
    grey = np.random.default_rng(0).integers(0, 256, (20, 24), np.uint8)
    mask = np.zeros((20, 24), np.uint8)
    mask[5:15, 5:15] = 255
    sample = AnomalySample(save_image(tmp_path / "g.png", grey), save_image(tmp_path / "m.png", mask))
    image = load_training_examples([sample], 8).images[0]
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])


def test_a_mask_that_vanishes_when_resized_is_refused(tmp_path):
    mask = np.zeros((64, 64), np.uint8)
    mask[1, 1] = 255  # nearest-neighbour sampling to 8x8 reads pixels 4, 12, ...: this one is never read
    sample = AnomalySample(save_image(tmp_path / "i.png", np.zeros((64, 64, 3), np.uint8)),
                           save_image(tmp_path / "m.png", mask))
    with pytest.raises(DataError, match=r"m\.png: the anomaly vanishes when the mask is resized to 8x8"):
        load_training_examples([sample], 8)


def test_bad_samples_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="too few images to train"):
        load_training_examples([], 64)
    sample = AnomalySample(save_image(tmp_path / "i.png", np.zeros((8, 8, 3), np.uint8)),
                           save_image(tmp_path / "m.png", np.full((8, 9), 255, np.uint8)))
    with pytest.raises(DataError, match="mask is 9x8 pixels but its image is 8x8"):
        load_training_examples([sample], 4)
