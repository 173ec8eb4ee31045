"""BCM's object masks and background bank, on the synthetic washer (a ring on a plain background)."""

import numpy as np
import pytest
from PIL import Image

from dualanodiff.data import load_source
from dualanodiff.errors import DataError
from dualanodiff.masks.objects import BorderColourSegmenter, FolderMasks, remove_object


def _normals(root, count=12):
    return [np.asarray(Image.open(p).convert("RGB")) for p in load_source(root).normal_train("washer")[:count]]


def test_border_segmenter_finds_the_ring_and_keeps_its_hole(synthetic_root):
    images = _normals(synthetic_root)
    segmenter = BorderColourSegmenter().fit(images)
    for image in images[:4]:
        mask = segmenter(image)
        side = mask.shape[0]
        assert not mask[:3].any() and not mask[:, :3].any()  # the border is background
        assert not mask[side // 2, side // 2]  # the washer's hole stays background
        assert 0.2 < mask.mean() < 0.7
        ring = mask[side // 2, : side // 2]  # a ray from the left edge to the centre crosses metal
        assert ring.any()


def test_remove_object_blacks_out_the_object_only():
    image = np.full((4, 4, 3), 100, np.uint8)
    mask = np.zeros((4, 4), bool)
    mask[1, 1] = True
    background = remove_object([image], [mask])[0]
    assert background[1, 1].tolist() == [0, 0, 0] and background[0, 0].tolist() == [100, 100, 100]


def test_folder_masks_mirror_the_data_set(tmp_path):
    object_root = tmp_path / "data" / "washer"
    image = object_root / "train" / "good" / "000.png"
    folder = tmp_path / "masks"
    (folder / "train" / "good").mkdir(parents=True)
    mask = np.zeros((8, 8), np.uint8)
    mask[2:6, 2:6] = 255
    Image.fromarray(mask).save(folder / "train" / "good" / "000.png")
    masks = FolderMasks(folder, object_root)
    assert masks.mask_for(image, 4).sum() == 4
    with pytest.raises(DataError, match="no object mask for"):
        masks.mask_for(object_root / "test" / "rust" / "001.png", 4)
    with pytest.raises(DataError, match="not found"):
        FolderMasks(tmp_path / "nowhere", object_root)
