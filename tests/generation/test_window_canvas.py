"""The window canvas: samples drawn into windows of real normal images, on the object, remade from their record."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from dualanodiff.cli import main
from dualanodiff.data import load_rgb, read_mask, resized_rgb
from dualanodiff.generation import DualAnoDiffPipeline, GenerateSettings, generate
from dualanodiff.generation.windows import FEATHER
from dualanodiff.model.config import DualConfig
from dualanodiff.training import Run, train
from helpers import micro_settings


@pytest.fixture(scope="module")
def window_run(synthetic_root, micro_base_dir, tmp_path_factory):
    """A briefly trained micro run with BCM on windows: 16-px windows of the 64-px synthetic washer."""
    settings = micro_settings(synthetic_root, micro_base_dir, canvas="window", resolution=16, working_resolution=64,
                              steps=3, model=DualConfig(bcm=True))
    return train(settings, tmp_path_factory.mktemp("window") / "run")


@pytest.fixture(scope="module")
def window_gen(window_run, tmp_path_factory):
    return generate(window_run, tmp_path_factory.mktemp("window-gen") / "gen",
                    GenerateSettings(num=6, steps=3, batch_size=3, seed=2, qc="off"))


def _normal(run: Run, name: str) -> tuple[np.ndarray, np.ndarray]:
    path = next((Path(run.settings.data_root) / run.settings.object / "train" / "good").glob(f"{name}.*"))
    image = resized_rgb(load_rgb(path), run.settings.working_side, Image.Resampling.LANCZOS)
    return image, read_mask(run.object_mask_path("normal", name))


def test_a_window_run_keeps_its_windows_and_object_masks(window_run):
    windows = window_run.windows()
    assert windows["working_resolution"] == 64 and len(windows["sides"]) == len(window_run.split()["train"])
    assert all(16 <= side <= 64 for side in windows["sides"])
    assert window_run.object_mask_stems("normal")


def test_outside_the_grown_mask_every_pixel_is_the_normal_image_s_own(window_run, window_gen):
    samples = window_gen.samples()
    assert len(samples) == 6
    for sample in samples:
        image, part, mask = sample.load()
        assert image.shape == (64, 64, 3)  # the working resolution, not the model's 16 px
        normal, objects = _normal(window_run, sample.record["normal"])
        top, left, side = sample.record["window"]
        assert min(top, left) >= 0 and max(top, left) + side <= 64
        assert not (mask & ~objects).any()  # no mask pixel off the object
        grown = ndimage.distance_transform_edt(~mask) < max(2.0, FEATHER * side) if mask.any() else mask
        assert np.array_equal(image[~grown], normal[~grown])
        assert np.array_equal(part[~mask], np.zeros_like(part[~mask]))
        assert np.array_equal(part[mask], image[mask])


def test_a_windows_file_without_context_descriptors_is_refused_in_one_line(window_run, tmp_path):
    import shutil

    from dualanodiff.errors import ModelError

    old = tmp_path / "old"
    shutil.copytree(window_run.root, old)
    statistics = json.loads((old / "windows.json").read_text())
    del statistics["contexts"]
    (old / "windows.json").write_text(json.dumps(statistics))
    with pytest.raises(ModelError, match=r"windows\.json: no window sides and context descriptors"):
        Run.open(old).windows()


def test_windows_are_placed_on_the_object(window_run):
    pipe = DualAnoDiffPipeline.from_pretrained(window_run)
    for index in range(40):
        placement = pipe.canvas.place(index, seed=5)
        _, objects = _normal(window_run, placement["normal"])
        top, left, side = placement["window"]
        assert objects[top:top + side, left:left + side].any()
        assert placement == pipe.canvas.place(index, seed=5)  # a function of (seed, index) alone


def test_a_sample_s_record_is_enough_to_make_it_again(window_run, window_gen):
    meta = json.loads((window_gen.root / "meta.json").read_text())["settings"]
    sample = window_gen.samples()[4]
    record = sample.record
    pipe = DualAnoDiffPipeline.from_pretrained(window_run)
    again = pipe([record["index"]], seed=record["seed"], steps=meta["steps"], guidance=meta["guidance"],
                 placements=[record], progress=False)
    image, _, mask = sample.load()
    assert np.array_equal(again.images[0], image) and np.array_equal(again.masks[0], mask)
    moved = {**record, "window": [0, 0, record["window"][2]], "normal": window_run.object_mask_stems("normal")[0]}
    elsewhere = pipe([record["index"]], seed=record["seed"], steps=meta["steps"], guidance=meta["guidance"],
                     placements=[moved], progress=False)
    assert elsewhere.records[0]["window"] == moved["window"]


def test_the_cli_trains_and_generates_on_windows_and_refuses_a_working_resolution_without_them(
        synthetic_root, micro_base_dir, tmp_path, capsys):
    common = ["train", "--data", str(synthetic_root), "--object", "washer", "--anomaly", "rust",
              "--base-model", str(micro_base_dir), "--resolution", "16", "--steps", "2", "--batch-size", "2",
              "--rank", "4"]
    with pytest.raises(SystemExit) as exit_:
        main([*common, "--out", str(tmp_path / "bad"), "--canvas", "image", "--working-resolution", "64"])
    assert exit_.value.code == 2
    assert "--working-resolution needs --canvas window" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main([*common, "--out", str(tmp_path / "run"), "--canvas", "window", "--working-resolution", "64"])
    assert exit_.value.code == 0
    with pytest.raises(SystemExit) as exit_:
        main(["generate", str(tmp_path / "run"), "--out", str(tmp_path / "gen"), "--num", "2", "--steps", "2",
              "--qc", "off"])
    assert exit_.value.code == 0
    assert Image.open(tmp_path / "gen" / "image" / "0000.png").size == (64, 64)


def test_components_along_the_window_s_edge_are_dropped():
    from dualanodiff.generation.windows import _inside_the_window

    mask = np.zeros((16, 16), bool)
    mask[2:14, 0:2] = True  # a strip along the left edge
    mask[6:9, 6:9] = True  # a defect inside
    kept = _inside_the_window(mask)
    assert not kept[:, :2].any() and kept[6:9, 6:9].all()


def test_the_mask_grows_to_what_visibly_changed_around_the_drawn_anomaly():
    from dualanodiff.generation.windows import _what_changed

    normal = np.full((32, 32, 3), 120, np.uint8)
    out = normal.copy()
    out[10:20, 10:20] = 20  # the drawn anomaly: a change of 100
    out[9, 10:20] = 60  # its soft edge, outside the drawn mask: a change of 60, visible
    out[20, 10:20] = 100  # a faint fringe: a change of 20, under half the anomaly's
    out[2:4, 2:4] = 0  # a change that does not meet the anomaly
    drawn = np.zeros((32, 32), bool)
    drawn[10:20, 10:20] = True
    touched = np.ones((32, 32), bool)
    mask = _what_changed(out, normal, drawn, touched)
    assert mask[drawn].all() and mask[9, 10:20].all()
    assert not mask[20].any() and not mask[2:4, 2:4].any()
    untouched_edge = touched.copy()
    untouched_edge[9] = False  # a pixel the blend did not touch is never added
    assert not _what_changed(out, normal, drawn, untouched_edge)[9].any()
