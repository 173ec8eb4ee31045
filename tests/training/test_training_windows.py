import numpy as np
import torch

from dualanodiff.training.windows import NormalWindows, anomaly_depth, training_windows, window_statistics


def _coordinates(side: int) -> torch.Tensor:
    """A 3-channel image whose pixels hold their own row and column: a window's crop tells where it was cut."""
    rows, columns = torch.meshgrid(torch.arange(side).float(), torch.arange(side).float(), indexing="ij")
    return torch.stack([rows, columns, torch.zeros_like(rows)])


def test_training_windows_hold_the_whole_anomaly_and_move_around_it():
    side, size = 64, 16
    masks = np.zeros((2, side, side), bool)
    masks[0, 5:9, 50:60] = True  # near an edge: windows are pushed inside the image
    masks[1, 30:33, 20:23] = True  # a 3-px defect: windows of the model's own side, full detail
    image = _coordinates(side)
    pixels = torch.stack([torch.stack([image, image]) for _ in masks])  # (N, streams, 3, W, W)
    windows = training_windows(pixels, masks, margin=0.5, size=size, flips=(False, False),
                               generator=torch.Generator().manual_seed(0), count=24)
    assert windows.shape == (2, 24, 2, 3, size, size)
    assert torch.equal(windows[:, :, 0], windows[:, :, 1])  # every stream cut at the same place
    for mask, cut in zip(masks, windows[:, :, 0], strict=True):
        rows, columns = np.nonzero(mask)
        for window in cut:
            assert window[0].min() <= rows.min() + 1 and window[0].max() >= rows.max() - 1
            assert window[1].min() <= columns.min() + 1 and window[1].max() >= columns.max() - 1
        corners = {(round(float(w[0].min())), round(float(w[1].min()))) for w in cut}
        assert len(corners) > 5  # jittered, not one fixed crop
    small = windows[1, :, 0]
    assert all(float(w[0].max() - w[0].min()) <= 1.15 * size for w in small)  # about the model's own side


def test_flips_turn_the_window_of_every_stream_together():
    side = 32
    masks = np.zeros((1, side, side), bool)
    masks[0, 10:20, 10:20] = True
    image = _coordinates(side)
    pixels = torch.stack([image, image])[None]
    windows = training_windows(pixels, masks, margin=0.5, size=16, flips=(True, True),
                               generator=torch.Generator().manual_seed(1), count=32)[0]
    flipped_columns = windows[:, 0, 1, 0, 0] > windows[:, 0, 1, 0, -1]
    assert 0 < int(flipped_columns.sum()) < 32
    assert torch.equal(windows[:, 0], windows[:, 1])


def test_normal_windows_are_mostly_on_the_object():
    side = 64
    object_mask = np.zeros((side, side), bool)
    object_mask[22:42, 22:42] = True  # in the middle: a window pushed inside the image keeps its centre on it
    image = torch.from_numpy(np.where(object_mask[None], 255, 0).astype(np.uint8).repeat(3, 0))
    windows = NormalWindows(image[None], [object_mask], flips=(False, False))
    batch = windows.draw(400, 16, torch.Generator().manual_seed(0))
    assert batch.shape == (400, 3, 16, 16)
    centre_on_object = (batch[:, 0, 7:9, 7:9].mean(dim=(1, 2)) > 0).float().mean()
    assert 0.65 < float(centre_on_object) < 0.95  # 75 % aimed at the object, a few more land there by chance


def test_window_statistics_record_sides_and_depths():
    masks = np.zeros((2, 64, 64), bool)
    masks[0, 30:34, 30:34] = True  # in the middle of the object
    masks[1, 10:12, 10:40] = True  # at its edge
    objects = np.zeros((64, 64), bool)
    objects[10:54, 10:54] = True
    images = np.zeros((2, 64, 64, 3), np.uint8)
    images[1, :, :32] = 200  # the second anomaly's surroundings: half bright
    statistics = window_statistics(images, masks, [objects, objects], margin=0.5, smallest=16)
    assert statistics["sides"] == [16, 60]
    first, second = (np.asarray(context) for context in statistics["contexts"])
    assert first[0] == 1.0 and 0.2 < second[0] < 0.8  # the share of dark pixels around each
    assert statistics["depths"][0] > 0.8 and statistics["depths"][1] < 0.15
    assert anomaly_depth(masks[0], np.ones((64, 64), bool)) is None  # a texture: no object to be inside
