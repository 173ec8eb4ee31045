import os
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from dualanodiff.baselines import (
    METHODS,
    feathered_alpha,
    generate_baseline,
    object_regions,
    perlin_noise,
)
from dualanodiff.data import load_rgb, load_source, make_split
from dualanodiff.errors import UserError
from dualanodiff.generation.generated_set import GeneratedSet
from dualanodiff.io import read_json

MTD = Path(os.environ.get("DUALANODIFF_MTD_ROOT", "/work/shared/datasets/mtd-sample"))
MTD_LAYOUT = Path(__file__).resolve().parents[1] / "examples" / "layouts" / "mtd.json"


def _normal(source, object, name) -> np.ndarray:
    paths = {path.name: path for path in source.normal_train(object)}
    return np.asarray(load_rgb(paths[name]))


@pytest.fixture(scope="module")
def gens(synthetic_root, tmp_path_factory) -> dict[str, GeneratedSet]:
    out = tmp_path_factory.mktemp("baselines")
    source = load_source(synthetic_root)
    return {method: generate_baseline(method, source, "washer", "rust", 12, out / method, seed=5, resolution=64)
            for method in METHODS}


@pytest.mark.parametrize("method", METHODS)
def test_masks_are_never_empty_and_cover_exactly_the_changed_pixels(synthetic_root, gens, method):
    source = load_source(synthetic_root)
    for sample in gens[method].samples():
        image, part, mask = sample.load()
        assert mask.any()
        assert np.array_equal(part, image * mask[..., None])
        changed = (image != _normal(source, "washer", sample.record["normal"])).any(axis=2)
        assert changed.any()
        if method == "croppaste":
            # The feathered edge blends (weight < 0.5) a few pixels just outside the mask, nothing further out.
            assert not (changed & ~ndimage.binary_dilation(mask, iterations=3)).any()
        else:
            assert not (changed & ~mask).any()


def test_meta_records_the_split_and_croppaste_pastes_only_training_anomalies(synthetic_root, gens):
    split = make_split(load_source(synthetic_root).anomaly_samples("washer", "rust"))
    train_names = [s.name for s in split.train]
    for method, generated in gens.items():
        meta = read_json(generated.root / "meta.json")
        assert (meta["method"], meta["object"], meta["anomaly"]) == (method, "washer", "rust")
        assert meta["split"]["train"] == train_names and meta["split"]["test"] == [s.name for s in split.test]
        assert meta["split"]["train_count"] == len(train_names)  # what split.json calls train_count, too
        assert meta["num"] == 12 and len(meta["samples"]) == 12
    sources = {s.record["source_anomaly"] for s in gens["croppaste"].samples()}
    assert sources <= set(train_names) and len(sources) > 1


def test_croppaste_and_cutpaste_keep_to_the_object(gens):
    for method in ("croppaste", "cutpaste"):
        on_object = [s.record["on_object"] for s in gens[method].samples()]
        assert np.mean(on_object) > 0.9, method


def test_samples_depend_only_on_seed_and_index_so_runs_resume(synthetic_root, gens, tmp_path):
    source = load_source(synthetic_root)
    partial = generate_baseline("perlin", source, "washer", "rust", 5, tmp_path / "perlin", seed=5, resolution=64)
    (partial.root / "samples" / "0002.json").unlink()  # as if stopped while writing sample 2
    resumed = generate_baseline("perlin", source, "washer", "rust", 12, tmp_path / "perlin", seed=5, resolution=64)
    assert len(resumed.samples()) == 12
    for mine, reference in zip(resumed.samples(), gens["perlin"].samples(), strict=True):
        assert mine.image_path.read_bytes() == reference.image_path.read_bytes()
        assert mine.mask_path.read_bytes() == reference.mask_path.read_bytes()
    with pytest.raises(UserError, match="another settings"):
        generate_baseline("perlin", source, "washer", "rust", 12, tmp_path / "perlin", seed=6, resolution=64)


def test_object_region_excludes_background_and_the_hole_but_not_texture(synthetic_root):
    source = load_source(synthetic_root)
    washers = np.stack([_normal(source, "washer", path.name) for path in source.normal_train("washer")[:6]])
    regions = object_regions(washers)
    assert all(0.1 < region.mean() < 0.8 for region in regions)
    for region in regions:
        assert ndimage.binary_fill_holes(region).sum() > region.sum() + 20  # the washer's hole stays out
        assert not region[0].any() and not region[:, 0].any()  # the border is background
    fabrics = np.stack([_normal(source, "fabric", path.name) for path in source.normal_train("fabric")[:6]])
    assert object_regions(fabrics).all()


def test_feathered_alpha_is_above_half_exactly_on_the_mask_even_for_thin_lines():
    mask = np.zeros((20, 20), bool)
    mask[5, 2:18] = True  # one pixel thick
    mask[10:16, 10:16] = True
    alpha = feathered_alpha(mask)
    assert np.array_equal(alpha > 0.5, mask)
    assert alpha.max() <= 1.0 and alpha.min() >= 0.0
    assert 0 < alpha[4, 5] < 0.5  # soft just outside


def test_perlin_noise_is_smooth_bounded_and_reproducible():
    noise = perlin_noise(64, (4, 2), np.random.default_rng(0))
    assert noise.shape == (64, 64)
    assert np.abs(noise).max() <= 1.5 and noise.std() > 0.05
    assert np.abs(np.diff(noise, axis=0)).max() < 0.25  # continuous at 16-pixel cells
    assert np.array_equal(noise, perlin_noise(64, (4, 2), np.random.default_rng(0)))


@pytest.mark.parametrize(("method", "num", "message"), [
    ("stamp", 3, "unknown baseline method 'stamp'"), ("perlin", 0, "--num 0"),
])
def test_bad_requests_are_one_line_errors(synthetic_root, tmp_path, method, num, message):
    with pytest.raises(UserError, match=message):
        generate_baseline(method, load_source(synthetic_root), "washer", "rust", num, tmp_path / "gen")


@pytest.mark.skipif(not MTD.is_dir(), reason=f"MTD sample not found at {MTD}")
def test_croppaste_runs_on_the_grey_mtd_sample_in_its_custom_layout(tmp_path):
    source = load_source(MTD, MTD_LAYOUT)
    generated = generate_baseline("croppaste", source, "magnetic_tile", "crack", 3, tmp_path / "gen",
                                  resolution=64, train_count=2)
    assert read_json(generated.root / "meta.json")["split"]["train_count"] == 2
    image, _, mask = generated.samples()[0].load()
    assert image.shape == (64, 64, 3) and mask.any()
