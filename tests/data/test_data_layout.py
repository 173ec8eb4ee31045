"""Custom layouts: the JSON schema, its one-line errors, and the real Magnetic Tile Defect sample through
examples/layouts/mtd.json.

The MTD data set is by Huang, Qiu and Yuan, "Surface defect saliency of magnetic tile", The Visual Computer 36
(2020) 85-96. Its sample lives outside the repository (set DUALANODIFF_MTD_ROOT to point elsewhere); the tests
that need it are skipped where it is absent.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import binary_dilation

from dualanodiff.data import LAYOUT_FILE_NAME, load_mask, load_rgb, load_source
from dualanodiff.errors import DataError
from dualanodiff.io import save_image

MTD_ROOT = Path(os.environ.get("DUALANODIFF_MTD_ROOT", "/work/shared/datasets/mtd-sample"))
MTD_LAYOUT = Path(__file__).resolve().parents[2] / "examples" / "layouts" / "mtd.json"
needs_mtd = pytest.mark.skipif(not MTD_ROOT.is_dir(), reason=f"MTD sample not found at {MTD_ROOT}")


@needs_mtd
def test_mtd_sample_through_the_example_layout():
    source = load_source(MTD_ROOT, MTD_LAYOUT)
    assert source.objects() == ["magnetic_tile"]
    assert source.anomaly_types("magnetic_tile") == ["blowhole", "crack"]
    for anomaly in ("blowhole", "crack"):
        samples = source.anomaly_samples("magnetic_tile", anomaly)
        assert len(samples) == 20
        assert all(s.image_path.suffix == ".jpg" and s.mask_path == s.image_path.with_suffix(".png")
                   for s in samples)
    train, test = source.normal_train("magnetic_tile"), source.normal_test("magnetic_tile")
    assert (len(train), len(test)) == (48, 12)  # the last 20% of the 60 normal images test
    assert sorted(train + test) == train + test  # train is the first part by name, test the rest
    assert all(p.suffix == ".jpg" for p in train + test)  # the all-black .png masks beside them are ignored
    assert source.problems() == []


@needs_mtd
def test_mtd_pixels():
    source = load_source(MTD_ROOT, MTD_LAYOUT)
    first = source.anomaly_samples("magnetic_tile", "blowhole")[0]
    assert first.name == "exp1_num_108719.jpg"
    assert Image.open(first.image_path).mode == "L"  # grayscale JPEG, loaded as RGB with equal channels
    image = np.asarray(load_rgb(first.image_path))
    assert image.shape == (373, 248, 3) and (image[..., 0] == image[..., 2]).all()
    assert image.mean() == pytest.approx(70.13, abs=0.01)
    raw_mask = np.asarray(Image.open(first.mask_path))
    assert ((raw_mask > 0) & (raw_mask < 255)).any()  # soft-edged, so binarising matters
    sizes = set()
    for anomaly in ("blowhole", "crack"):
        for sample in source.anomaly_samples("magnetic_tile", anomaly):
            image = np.asarray(load_rgb(sample.image_path), dtype=float)[..., 0]
            mask = load_mask(sample.mask_path, (image.shape[1], image.shape[0]))
            sizes.add(image.shape)
            # Blowholes and cracks are darker than the tile right around them, in every image.
            ring = binary_dilation(mask, iterations=5) & ~mask
            assert image[mask].mean() < image[ring].mean(), sample.name
            assert mask.mean() < 0.03  # small defects
    assert len(sizes) > 10  # image sizes vary


@needs_mtd
def test_mtd_with_an_anomaly_pattern(tmp_path):
    layout = tmp_path / "pattern.json"
    layout.write_text(json.dumps({"objects": {"tile": {
        "anomalies": "MT_{anomaly}/Imgs", "images": "*.jpg", "masks": "{stem}.png", "normal": "MT_Free/Imgs"}}}))
    source = load_source(MTD_ROOT, layout)
    assert source.anomaly_types("tile") == ["Blowhole", "Crack"]  # MT_Free is the normal folder, not a type
    assert len(source.anomaly_samples("tile", "Crack")) == 20
    assert len(source.normal_train("tile")) == 60 and source.normal_test("tile") == []


@pytest.fixture
def custom_root(tmp_path: Path) -> Path:
    """Images and masks in separate trees: defects/<type>/*.jpg, labels/<type>/<stem>.png, normals good/*.png,
    one more normal in held_out/, and a note among the normal images."""
    root = tmp_path / "custom"
    rng = np.random.default_rng(0)
    mask = np.zeros((12, 10), np.uint8)
    mask[3:8, 2:6] = 200
    for anomaly, names in {"dent": ["b", "a", "c"], "scuff": ["x", "y"]}.items():
        (root / "defects" / anomaly).mkdir(parents=True)
        for name in names:
            image = Image.fromarray(rng.integers(0, 256, (12, 10, 3), np.uint8))
            image.save(root / "defects" / anomaly / f"{name}.jpg")
            save_image(root / "labels" / anomaly / f"{name}.png", mask)
    for name in "abcde":
        save_image(root / "good" / f"{name}.png", rng.integers(0, 256, (12, 10), np.uint8))
    save_image(root / "held_out" / "f.png", rng.integers(0, 256, (12, 10), np.uint8))
    (root / "good" / "notes.md").write_text("not matching the image pattern, so not looked at")
    return root


def _write_layout(path: Path, **entry) -> Path:
    path.write_text(json.dumps({"format": "dualanodiff-layout/1", "objects": {"part": entry}}))
    return path


def test_mapping_masks_from_the_root_and_a_normal_test_folder(custom_root, tmp_path):
    layout = _write_layout(tmp_path / "layout.json", anomalies={"dent": "defects/dent", "scuff": "defects/scuff"},
                           images="*.JPG", masks="{root}/labels/{anomaly}/{stem}.png", normal="good",
                           normal_test={"folder": "held_out"})
    source = load_source(custom_root, layout)
    samples = source.anomaly_samples("part", "dent")
    assert [s.name for s in samples] == ["a.jpg", "b.jpg", "c.jpg"]
    assert samples[0].mask_path == custom_root / "labels" / "dent" / "a.png"
    with pytest.raises(DataError, match=r"good: no images matching '\*.JPG'"):  # the normals are .png
        source.normal_train("part")
    _write_layout(layout, anomalies={"dent": "defects/dent", "scuff": "defects/scuff"}, images="*.[jp][pn]g",
                  masks="{root}/labels/{anomaly}/{stem}.png", normal="good", normal_test={"folder": "held_out"})
    source = load_source(custom_root, layout)
    assert [p.name for p in source.normal_train("part")] == ["a.png", "b.png", "c.png", "d.png", "e.png"]
    assert [p.name for p in source.normal_test("part")] == ["f.png"]
    assert source.problems() == []
    assert source.describe()["layout"] == f"layout {layout}"


def test_pattern_masks_relative_to_the_image_and_a_last_fraction(custom_root, tmp_path):
    layout = _write_layout(tmp_path / "layout.json", anomalies="defects/{anomaly}", images="*.[jp][pn]g",
                           masks="../../labels/{anomaly}/{stem}.png", normal="good",
                           normal_test={"last_fraction": 0.5})
    source = load_source(custom_root, layout)
    assert source.anomaly_types("part") == ["dent", "scuff"]
    assert source.anomaly_samples("part", "scuff")[1].mask_path == custom_root / "labels" / "scuff" / "y.png"
    # floor(0.5 x 5) = 2 held out: the last two by name, never also training.
    assert [p.name for p in source.normal_train("part")] == ["a.png", "b.png", "c.png"]
    assert [p.name for p in source.normal_test("part")] == ["d.png", "e.png"]
    assert source.problems() == []


def test_layout_file_in_the_root_is_found(custom_root):
    _write_layout(custom_root / LAYOUT_FILE_NAME, anomalies="defects/{anomaly}", images="*.jpg",
                  masks="{root}/labels/{anomaly}/{stem}.png", normal="defects/dent")
    source = load_source(custom_root)
    assert source.anomaly_types("part") == ["scuff"]  # defects/dent is the normal folder here
    assert len(source.normal_train("part")) == 3


def test_missing_folders_and_masks_in_a_custom_layout(custom_root, tmp_path):
    layout = _write_layout(tmp_path / "layout.json", anomalies={"dent": "defects/dent", "bend": "defects/bend"},
                           images="*.jpg", masks="{stem}_mask.png", normal="ok")
    source = load_source(custom_root, layout)
    problems = source.problems()
    assert f"{custom_root / 'defects/bend'}: folder not found" in problems
    assert f"{custom_root / 'ok'}: folder not found" in problems
    assert sum("no mask (expected" in p and "defects/dent" in p for p in problems) == 3
    with pytest.raises(DataError, match="folder not found"):
        source.anomaly_samples("part", "bend")
    pattern = _write_layout(tmp_path / "pattern.json", anomalies="nothing_{anomaly}", images="*.png",
                            masks="{stem}.png", normal="good")
    assert load_source(custom_root, pattern).problems() == [
        f"{pattern}: objects.part.anomalies: no folder under {custom_root} matches 'nothing_{{anomaly}}'"]


GOOD = {"anomalies": {"dent": "defects/dent"}, "images": "*.jpg", "masks": "{stem}.png", "normal": "good"}


@pytest.mark.parametrize(("layout", "expected"), [
    ("{", "not valid JSON"),
    ([], "must hold a JSON object"),
    ({"objects": {"part": GOOD}, "object": "x"}, "object: unknown key"),
    ({"format": "other/2", "objects": {"part": GOOD}}, "format: \"other/2\" is not"),
    ({}, "objects: missing"),
    ({"objects": {}}, "objects: is empty"),
    ({"objects": {"a/b": GOOD}}, "objects.a/b: 'a/b' is not a usable name"),
    ({"objects": {"part": {**GOOD, "mask": "x"}}}, "objects.part.mask: unknown key"),
    ({"objects": {"part": {k: v for k, v in GOOD.items() if k != "normal"}}}, "objects.part.normal: missing"),
    ({"objects": {"part": {**GOOD, "anomalies": "defects/all"}}}, "objects.part.anomalies: the pattern"),
    ({"objects": {"part": {**GOOD, "anomalies": "{anomaly}/{anomaly}"}}}, "exactly once"),
    ({"objects": {"part": {**GOOD, "anomalies": "{anomaly}_{x}"}}}, "the only placeholder allowed"),
    ({"objects": {"part": {**GOOD, "anomalies": {}}}}, "objects.part.anomalies: is empty"),
    ({"objects": {"part": {**GOOD, "anomalies": {"dent": 3}}}}, "objects.part.anomalies.dent: must be a non-empty"),
    ({"objects": {"part": {**GOOD, "anomalies": {"dent": "/abs"}}}}, "relative to the data root"),
    ({"objects": {"part": {**GOOD, "anomalies": {"dent": "good"}}}}, "also a normal-image folder"),
    ({"objects": {"part": {**GOOD, "images": ""}}}, "objects.part.images: must be a non-empty string"),
    ({"objects": {"part": {**GOOD, "masks": "{stm}.png"}}}, "objects.part.masks: unknown placeholder {stm}"),
    ({"objects": {"part": {**GOOD, "masks": "mask.png"}}}, "must contain {stem} or {name}"),
    ({"objects": {"part": {**GOOD, "masks": "/masks/{stem}.png"}}}, "must be relative to the image's folder"),
    ({"objects": {"part": {**GOOD, "masks": "{stem"}}}, "not a valid name rule"),
    ({"objects": {"part": {**GOOD, "normal_test": {"last_fraction": 1.5}}}},
     "objects.part.normal_test.last_fraction: must be a number between 0 and 1"),
    ({"objects": {"part": {**GOOD, "normal_test": {"last_fraction": 0.2, "folder": "x"}}}}, "exactly one of"),
    ({"objects": {"part": {**GOOD, "normal_test": {"first": 2}}}}, "objects.part.normal_test.first: unknown key"),
])
def test_layout_errors_name_the_file_and_the_key(custom_root, tmp_path, layout, expected):
    path = tmp_path / "bad.json"
    path.write_text(layout if isinstance(layout, str) else json.dumps(layout))
    with pytest.raises(DataError) as error:
        load_source(custom_root, path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert expected in message


def test_missing_layout_file(custom_root, tmp_path):
    with pytest.raises(DataError, match="layout file not found"):
        load_source(custom_root, tmp_path / "none.json")


def test_a_layout_reads_only_inside_the_data_root(custom_root, tmp_path):
    outside = tmp_path / "elsewhere"
    (outside / "good").mkdir(parents=True)
    save_image(outside / "good" / "secret.png", np.zeros((12, 10), np.uint8))
    for name in "abc":
        save_image(outside / "dent-labels" / f"{name}.png", np.full((12, 10), 255, np.uint8))
    dent = {"dent": "defects/dent"}
    with pytest.raises(DataError, match=r"objects\.part\.normal: '\.\./elsewhere/good' leads out of the data root"):
        load_source(custom_root, _write_layout(tmp_path / "up.json", anomalies=dent, images="*",
                                               masks="{root}/labels/{anomaly}/{stem}.png",
                                               normal="../elsewhere/good"))
    (custom_root / "linked").symlink_to(outside / "good")  # a link inside the root that points out of it
    linked = load_source(custom_root, _write_layout(tmp_path / "link.json", anomalies=dent, images="*",
                                                    masks="{root}/labels/{anomaly}/{stem}.png", normal="linked"))
    with pytest.raises(DataError, match=r"link\.json: objects\.part\.normal: .*secret\.png lies outside"):
        linked.normal_train("part")
    masks_out = load_source(custom_root, _write_layout(tmp_path / "masks.json", anomalies=dent, images="*",
                                                       masks="{root}/../elsewhere/dent-labels/{stem}.png",
                                                       normal="good"))
    with pytest.raises(DataError, match=r"objects\.part\.masks: .*a\.png lies outside the data root"):
        masks_out.anomaly_samples("part", "dent")
    assert any("lies outside the data root" in problem for problem in masks_out.problems())


def test_a_mask_rule_with_a_format_spec_is_refused(custom_root, tmp_path):
    with pytest.raises(DataError, match=r"objects\.part\.masks: .*take no format spec"):
        load_source(custom_root, _write_layout(tmp_path / "spec.json", anomalies={"dent": "defects/dent"},
                                               images="*", masks="{stem:x}.png", normal="good"))


def test_the_hint_to_list_every_problem_names_the_layout(custom_root, tmp_path):
    layout = _write_layout(tmp_path / "layout.json", anomalies={"dent": "defects/dent"}, images="*",
                           masks="{root}/nowhere/{stem}.png", normal="good")
    with pytest.raises(DataError, match=rf"run `dualanodiff data {custom_root} --layout {layout}` for all"):
        load_source(custom_root, layout).anomaly_samples("part", "dent")
