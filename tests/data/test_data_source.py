"""Data sources in MVTec AD layout: listings, unknown names, and every bad input as one DataError line."""

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dualanodiff.data import load_mask, load_rgb, load_source
from dualanodiff.errors import DataError
from dualanodiff.io import save_image


def test_synthetic_set_lists_objects_types_and_images(synthetic_root):
    source = load_source(synthetic_root)
    assert source.root == synthetic_root
    assert source.objects() == ["fabric", "washer"]
    assert source.anomaly_types("fabric") == ["hole", "stain"]
    assert source.anomaly_types("washer") == ["crack", "rust"]
    for name in source.objects():
        train, test = source.normal_train(name), source.normal_test(name)
        assert len(train) == 60 and len(test) == 8
        assert [p.name for p in train] == sorted(p.name for p in train)
        assert all(p.parent == synthetic_root / name / "train" / "good" for p in train)
        for anomaly in source.anomaly_types(name):
            samples = source.anomaly_samples(name, anomaly)
            assert len(samples) == 12
            assert [s.name for s in samples] == sorted(s.name for s in samples)
            first = samples[0]
            assert first.image_path == synthetic_root / name / "test" / anomaly / "000.png"
            assert first.mask_path == synthetic_root / name / "ground_truth" / anomaly / "000_mask.png"
            assert first.name == "000.png"
            assert load_mask(first.mask_path, load_rgb(first.image_path).size).any()


def test_synthetic_set_has_no_problems(synthetic_root):
    assert load_source(synthetic_root).problems() == []


def test_describe_counts_and_splits(synthetic_root):
    description = load_source(synthetic_root).describe("washer", train_count=5)
    assert description["layout"] == "MVTec AD layout"
    assert description["objects"] == {"washer": {
        "normal_train": 60, "normal_test": 8,
        "anomalies": {"crack": {"images": 12, "train": 5, "test": 7},
                      "rust": {"images": 12, "train": 5, "test": 7}}}}
    too_many = load_source(synthetic_root).describe("washer", train_count=12)["objects"]["washer"]
    assert "train count 12" in too_many["anomalies"]["rust"]["split_problem"]


def test_test_good_is_not_an_anomaly_type(tiny_mvtec):
    assert load_source(tiny_mvtec).anomaly_types("widget") == ["scratch"]


def test_unknown_object_lists_the_objects(synthetic_root):
    with pytest.raises(DataError, match=r"unknown object 'bolt' \(objects: fabric, washer\)"):
        load_source(synthetic_root).anomaly_types("bolt")


def test_unknown_anomaly_type_lists_the_types(synthetic_root):
    with pytest.raises(DataError, match=r"unknown anomaly type 'dent' for object 'washer' \(types: crack, rust\)"):
        load_source(synthetic_root).anomaly_samples("washer", "dent")


def test_missing_root(tmp_path):
    with pytest.raises(DataError, match="data folder not found"):
        load_source(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        load_source(tmp_path / "file")
    with pytest.raises(DataError, match="no objects found"):
        load_source(tmp_path)


def _raises_naming(call, path: Path, words: str) -> str:
    with pytest.raises(DataError) as error:
        call()
    message = str(error.value)
    assert "\n" not in message and str(path) in message and words in message
    return message


def test_image_without_mask(tiny_mvtec):
    image = tiny_mvtec / "widget/test/scratch/001.png"
    (tiny_mvtec / "widget/ground_truth/scratch/001_mask.png").unlink()
    source = load_source(tiny_mvtec)
    _raises_naming(lambda: source.anomaly_samples("widget", "scratch"), image, "no mask (expected")
    assert source.problems() == [f"{image}: no mask (expected "
                                 f"{tiny_mvtec / 'widget/ground_truth/scratch/001_mask.png'})"]


def test_mask_of_another_size(tiny_mvtec):
    mask = save_image(tiny_mvtec / "widget/ground_truth/scratch/000_mask.png", np.full((12, 16), 255, np.uint8))
    [problem] = load_source(tiny_mvtec).problems()
    assert problem.startswith(f"{mask}: mask is 16x12 pixels but its image is 16x16")


def test_empty_mask(tiny_mvtec):
    mask = save_image(tiny_mvtec / "widget/ground_truth/scratch/002_mask.png", np.zeros((16, 16), np.uint8))
    assert load_source(tiny_mvtec).problems() == [f"{mask}: mask is empty (no pixel >= 128 of 255)"]


def test_corrupt_and_truncated_images(tiny_mvtec):
    corrupt = tiny_mvtec / "widget/test/scratch/000.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n but then nothing sensible")
    truncated = tiny_mvtec / "widget/train/good/001.png"
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(buffer, "PNG")
    truncated.write_bytes(buffer.getvalue()[:-200])
    problems = load_source(tiny_mvtec).problems()
    assert len(problems) == 2
    assert problems[0].startswith(f"{corrupt}: ") and problems[1].startswith(f"{truncated}: corrupt or trunc")


def test_decompression_bomb(tiny_mvtec, monkeypatch):
    big = save_image(tiny_mvtec / "widget/train/good/002.png", np.zeros((40, 40, 3), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40 * 40 - 1)
    [problem] = load_source(tiny_mvtec).problems()
    assert problem.startswith(f"{big}: refused as a possible decompression bomb")


@pytest.mark.parametrize("name", ["notes.txt", "animation.gif", "README"])
def test_unsupported_file_type(tiny_mvtec, name):
    stray = tiny_mvtec / "widget/test/scratch" / name
    stray.write_bytes(b"GIF89a" if name.endswith(".gif") else b"hello")
    source = load_source(tiny_mvtec)
    _raises_naming(lambda: source.anomaly_samples("widget", "scratch"), stray, "unsupported file type")
    [problem] = source.problems()
    assert problem.startswith(f"{stray}: unsupported file type")


def test_hidden_files_and_folders_are_not_images(tiny_mvtec):
    (tiny_mvtec / "widget/train/good/.DS_Store").write_bytes(b"\0\0")
    (tiny_mvtec / "widget/test/scratch/.000.png.swp").write_bytes(b"\0")
    (tiny_mvtec / "widget/test/scratch/thumbnails").mkdir()
    (tiny_mvtec / "widget/test/.cache").mkdir()
    source = load_source(tiny_mvtec)
    assert source.problems() == []
    assert len(source.normal_train("widget")) == 3
    assert source.anomaly_types("widget") == ["scratch"]
    assert [s.name for s in source.anomaly_samples("widget", "scratch")] == ["000.png", "001.png", "002.png"]


def test_suffixes_are_case_insensitive(tiny_mvtec):
    shutil.move(tiny_mvtec / "widget/train/good/000.png", tiny_mvtec / "widget/train/good/000.PNG")
    assert [p.name for p in load_source(tiny_mvtec).normal_train("widget")] == ["000.PNG", "001.png", "002.png"]


def test_empty_type_folder_is_too_few_to_train(tiny_mvtec):
    (tiny_mvtec / "widget/test/dent").mkdir()
    source = load_source(tiny_mvtec)
    folder = tiny_mvtec / "widget/test/dent"
    _raises_naming(lambda: source.anomaly_samples("widget", "dent"), folder, "no images")
    assert source.problems() == [f"{folder}: no images"]
    assert "too few images to train" in source.describe()["objects"]["widget"]["anomalies"]["dent"][
        "split_problem"]


def test_problems_collects_everything_without_stopping(tiny_mvtec):
    (tiny_mvtec / "widget/ground_truth/scratch/000_mask.png").unlink()
    save_image(tiny_mvtec / "widget/ground_truth/scratch/001_mask.png", np.zeros((16, 16), np.uint8))
    (tiny_mvtec / "widget/test/scratch/notes.txt").write_text("x")
    (tiny_mvtec / "widget/test/good/000.png").write_bytes(b"junk")
    (tiny_mvtec / "widget/test/dent").mkdir()
    source = load_source(tiny_mvtec)
    problems = source.problems()
    assert len(problems) == 5
    for needle in ("000.png: no mask", "001_mask.png: mask is empty", "notes.txt: unsupported",
                   "test/good/000.png: not a readable image", "test/dent: no images"):
        assert sum(needle in p for p in problems) == 1, needle
    with pytest.raises(DataError, match=r"\(and 1 more; run `dualanodiff data "):
        source.anomaly_samples("widget", "scratch")
