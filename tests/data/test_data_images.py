"""Image and mask loading: conversions, binarising, and every unreadable file as one DataError line."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from dualanodiff.data import load_mask, load_rgb
from dualanodiff.errors import DataError
from dualanodiff.io import save_image


def _one_line(error: pytest.ExceptionInfo, path: Path) -> str:
    message = str(error.value)
    assert "\n" not in message
    assert str(path) in message
    return message


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "1"])
def test_load_rgb_converts_every_mode_to_rgb(tmp_path, mode):
    grey = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (8, 1))
    path = tmp_path / f"image_{mode}.png"
    Image.fromarray(grey).convert(mode).save(path)
    image = load_rgb(path)
    assert image.mode == "RGB" and image.size == (16, 8)
    array = np.asarray(image)
    assert (array[..., 0] == array[..., 1]).all() and (array[..., 1] == array[..., 2]).all()
    if mode in ("L", "RGBA", "P"):
        assert array[0, 8, 0] == 128  # the grey values survive the conversion


def test_load_rgb_keeps_the_range_of_16_bit_images(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.array([[0, 0x8000, 0xFFFF]], np.uint16)).save(path)
    assert Image.open(path).mode == "I;16"
    assert np.asarray(load_rgb(path))[0, :, 0].tolist() == [0, 128, 255]


def test_load_mask_binarises_at_half(tmp_path):
    path = save_image(tmp_path / "soft.png", np.array([[0, 127, 128, 255]], np.uint8))
    mask = load_mask(path, (4, 1))
    assert mask.dtype == bool and mask.tolist() == [[False, False, True, True]]


def test_load_mask_without_size_skips_the_size_check(tmp_path):
    path = save_image(tmp_path / "mask.png", np.full((3, 5), 255, np.uint8))
    assert load_mask(path).shape == (3, 5)


def test_mask_of_another_size_is_a_data_error(tmp_path):
    path = save_image(tmp_path / "mask.png", np.full((8, 10), 255, np.uint8))
    with pytest.raises(DataError) as error:
        load_mask(path, (16, 16))
    assert "10x8" in _one_line(error, path) and "16x16" in str(error.value)


def test_empty_mask_is_a_data_error(tmp_path):
    path = save_image(tmp_path / "mask.png", np.full((8, 8), 127, np.uint8))  # soft, but below 50% everywhere
    with pytest.raises(DataError) as error:
        load_mask(path, (8, 8))
    assert "empty" in _one_line(error, path)


def _png_bytes(size: int = 64) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (size, size, 3), np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def test_garbage_file_is_a_data_error(tmp_path):
    path = tmp_path / "image.png"
    path.write_bytes(b"not an image at all")
    with pytest.raises(DataError) as error:
        load_rgb(path)
    assert "not a readable image" in _one_line(error, path)


@pytest.mark.parametrize("suffix", ["png", "jpeg"])
def test_truncated_image_is_a_data_error(tmp_path, suffix):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), np.uint8)).save(buffer, suffix)
    path = tmp_path / f"image.{suffix}"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(DataError) as error:
        load_rgb(path)
    assert "truncated" in _one_line(error, path)


def test_no_module_lets_pillow_accept_truncated_images():
    import dualanodiff.cli  # noqa: F401  (imports every command module)

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize("limit", [40 * 40 - 1, 40 * 40 // 2 - 1], ids=["warning", "error"])
def test_decompression_bomb_is_a_data_error(tmp_path, monkeypatch, limit):
    # Past MAX_IMAGE_PIXELS Pillow only warns; past twice that it raises: both must be refused.
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_bytes(40))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(DataError) as error:
        load_rgb(path)
    assert "decompression bomb" in _one_line(error, path)


def test_missing_file_is_a_data_error(tmp_path):
    path = tmp_path / "nowhere.png"
    with pytest.raises(DataError) as error:
        load_rgb(path)
    assert "not found" in _one_line(error, path)
