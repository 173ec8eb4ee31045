import numpy as np
import pytest
from PIL import Image

from dualanodiff.generation.generated_set import GeneratedSet
from dualanodiff.viz import (
    contact_sheet,
    mask_overlay,
    plot_confusion_matrix,
    plot_loss_curve,
    side_by_side,
)

GREEN = (0, 200, 0)
MAGENTA = (255, 0, 255)
RED = (255, 0, 0)


def count_colour(image: np.ndarray, colour: tuple[int, int, int]) -> int:
    return int(np.all(image == np.array(colour, dtype=np.uint8), axis=-1).sum())


def marked_triplet(size: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A green image with one magenta pixel, and a 4x4 mask away from it."""
    image = np.zeros((size, size, 3), np.uint8)
    image[:] = GREEN
    image[3, 5] = MAGENTA
    mask = np.zeros((size, size), bool)
    mask[8:12, 8:12] = True
    part = np.where(mask[..., None], image, 0).astype(np.uint8)
    return image, part, mask


def test_mask_overlay_tints_inside_and_rings_the_mask():
    image = np.full((9, 9, 3), 100, np.uint8)
    mask = np.zeros((9, 9), bool)
    mask[4, 4] = True  # a single pixel: the ring must still make it visible
    out = mask_overlay(image, mask, color=RED, alpha=0.5)
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert tuple(out[4, 4]) == (178, 50, 50)  # half-way between grey 100 and red
    ring = np.zeros((9, 9), bool)
    ring[3:6, 3:6] = True
    ring[4, 4] = False
    assert count_colour(out, RED) == 8 and np.all(out[ring] == RED)
    untouched = ~ring & ~mask
    assert np.array_equal(out[untouched], image[untouched])


def test_mask_overlay_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="does not match"):
        mask_overlay(np.zeros((8, 8, 3), np.uint8), np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="uint8"):
        mask_overlay(np.zeros((8, 8, 3), np.float32), np.zeros((8, 8), bool))


def test_contact_sheet_enlarges_with_nearest_and_overlays_the_mask(tmp_path):
    path = contact_sheet([marked_triplet()], tmp_path / "sheet.png", cell=32, title="one row")
    sheet = np.asarray(Image.open(path).convert("RGB"))
    # 16 px -> 32 px with NEAREST: the magenta pixel becomes a sharp 2x2 block in the image and overlay
    # columns (the anomaly part is black there).
    assert count_colour(sheet, MAGENTA) == 2 * 4
    # The 4x4 mask becomes 8x8 tinted pixels ringed by a 1-pixel red contour (10x10 - 8x8 = 36 pixels).
    assert count_colour(sheet, RED) == 36
    assert sheet.shape[1] >= 3 * 32 and sheet.shape[0] > 32
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, no temp file left


def test_contact_sheet_groups_lay_rows_side_by_side(tmp_path):
    rows = [marked_triplet() for _ in range(4)]
    tall = Image.open(contact_sheet(rows, tmp_path / "tall.png", cell=32, groups=1)).size
    wide = Image.open(contact_sheet(rows, tmp_path / "wide.png", cell=32, groups=2)).size
    assert wide[0] > 2 * 3 * 32 > tall[0]
    assert wide[1] < tall[1] - 2 * 32
    sheet = np.asarray(Image.open(tmp_path / "wide.png").convert("RGB"))
    assert count_colour(sheet, MAGENTA) == 4 * 2 * 4  # every row drawn exactly once


def test_contact_sheet_fits_large_and_non_square_images(tmp_path):
    image = np.zeros((300, 150, 3), np.uint8)
    mask = np.zeros((300, 150), bool)
    mask[10, 10] = True  # one pixel of a 300-px image survives shrinking to a 64-px cell
    path = contact_sheet([(image, image, mask)], tmp_path / "sheet.png", cell=64)
    sheet = np.asarray(Image.open(path).convert("RGB"))
    assert count_colour(sheet, RED) > 0


def test_contact_sheet_from_generated(tmp_path):
    generated = GeneratedSet.create(tmp_path / "gen", method="dualanodiff", object="bottle", anomaly="crack",
                                    settings={"steps": 2})
    rng = np.random.default_rng(0)
    for index in range(3):
        image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
        mask = np.zeros((32, 32), bool)
        mask[4:10, 4:10] = True
        generated.write_sample(index, image, image * mask[..., None], mask, {"seed": index})
    path = generated.contact_sheet(tmp_path / "sheet.png", max_rows=3, groups=2)
    two_groups = Image.open(path).size
    one_group = Image.open(generated.contact_sheet(tmp_path / "one.png", groups=1)).size
    assert two_groups[0] > one_group[0] and two_groups[1] < one_group[1]

    empty = GeneratedSet.create(tmp_path / "empty", method="x", object="bottle", anomaly="crack", settings={})
    with pytest.raises(ValueError, match="no complete samples"):
        empty.contact_sheet(tmp_path / "none.png")


def test_side_by_side_labels_columns_of_unequal_length(tmp_path):
    image = marked_triplet()[0]
    path = side_by_side({"without BCM": [image, image], "with BCM": [image]}, tmp_path / "sbs.png", cell=32)
    sheet = np.asarray(Image.open(path).convert("RGB"))
    assert count_colour(sheet, MAGENTA) == 3 * 4
    assert 2 * 32 <= sheet.shape[1] < 3 * 32
    with pytest.raises(ValueError):
        side_by_side({"empty": []}, tmp_path / "none.png")


def test_plot_loss_curve_writes_a_png_and_checks_its_input(tmp_path):
    steps = np.arange(200)
    losses = np.exp(-steps / 20) + 1e-3  # spans three decades: drawn on a log axis
    losses[50] = np.nan  # a non-finite value is left out, not fatal
    path = plot_loss_curve(steps, losses, tmp_path / "loss.png", title="loss")
    width, height = Image.open(path).size
    assert width > 300 and height > 200
    with pytest.raises(ValueError, match="equally long"):
        plot_loss_curve([0, 1], [1.0], tmp_path / "bad.png")
    with pytest.raises(ValueError, match="no finite"):
        plot_loss_curve([0, 1], [np.nan, np.inf], tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_plot_confusion_matrix(tmp_path):
    path = plot_confusion_matrix([[3, 1], [0, 4]], ["crack", "hole"], tmp_path / "confusion.png", title="cm")
    assert Image.open(path).size[0] > 200
    with pytest.raises(ValueError, match="does not fit"):
        plot_confusion_matrix([[3, 1], [0, 4]], ["crack"], tmp_path / "bad.png")
