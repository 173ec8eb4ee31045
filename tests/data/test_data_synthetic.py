"""The built-in synthetic data set: layout, determinism, exact masks, and defects that survive 256 -> 64."""

import json

import numpy as np
import pytest
from PIL import Image

from dualanodiff.data import load_source, write_synthetic
from dualanodiff.data.synthetic import MIN_EXTENT, OBJECTS, extent, render
from dualanodiff.errors import DataError, UserError

SMALL = {"size": 48, "train_count": 2, "test_good_count": 1, "anomaly_count": 2}
DEFECTS = [(name, anomaly) for name, types in OBJECTS.items() for anomaly in types]


def _files(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_names_and_counts(synthetic_root):
    assert OBJECTS == {"fabric": ("hole", "stain"), "washer": ("crack", "rust")}
    assert json.loads((synthetic_root / "synthetic.json").read_text())["size"] == 64
    source = load_source(synthetic_root)
    assert {name: source.anomaly_types(name) for name in source.objects()} == {
        "fabric": ["hole", "stain"], "washer": ["crack", "rust"]}
    image = Image.open(source.anomaly_samples("washer", "rust")[0].image_path)
    assert image.mode == "RGB" and image.size == (64, 64)
    assert [p.name for p in (synthetic_root.parent).iterdir()] == ["data"]  # no staging folder left behind


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    first = _files(write_synthetic(tmp_path / "a", seed=7, **SMALL))
    second = _files(write_synthetic(tmp_path / "b", seed=7, **SMALL))
    other = _files(write_synthetic(tmp_path / "c", seed=8, **SMALL))
    assert len(first) == 2 * (2 + 1 + 2 * 2 * 2) + 1
    assert first == second
    images = [name for name in first if name.endswith(".png")]
    assert all(first[name] != other[name] for name in images if "ground_truth" not in name)


def test_normal_images_vary(synthetic_root):
    train = load_source(synthetic_root).normal_train("washer")[:5]
    arrays = [np.asarray(Image.open(p), dtype=float) for p in train]
    assert min(np.abs(a - b).mean() for i, a in enumerate(arrays) for b in arrays[i + 1:]) > 2


@pytest.mark.parametrize(("name", "anomaly"), DEFECTS)
@pytest.mark.parametrize("size", [64, 256])
def test_mask_is_exactly_what_changed_and_stays_visible(name, anomaly, size):
    for index in range(3):
        sample = render(name, anomaly, np.random.default_rng([3, index]), size)
        changed = (sample.clean != sample.image).any(axis=-1)
        assert np.array_equal(changed, sample.mask)
        assert extent(sample.mask) >= MIN_EXTENT
        # Never near-black inside the mask: the anomaly part can be thresholded back into the mask.
        brightest_channel = sample.image[sample.mask].max(axis=-1) / 255
        assert brightest_channel.min() >= 0.25
        if size == 256:  # the demo model's 64x64 still sees it
            small = Image.fromarray(sample.mask).resize((64, 64), Image.Resampling.NEAREST)
            assert np.asarray(small).sum() >= 20


def test_rust_is_orange_brown_and_only_on_the_metal():
    for index in range(5):
        sample = render("washer", "rust", np.random.default_rng([5, index]), 128)
        red, green, blue = (sample.image[sample.mask].astype(float) / 255).mean(axis=0)
        assert red > green + 0.1 > blue + 0.2
        # The metal under the patch was bright; the background is dark (below 0.35 everywhere).
        assert sample.clean[sample.mask].mean(axis=-1).min() / 255 > 0.35
        assert sample.clean[:4, :4].mean() / 255 < 0.35


def test_crack_lines_are_thick_enough_at_256():
    sample = render("washer", "crack", np.random.default_rng(11), 256)
    thickness = sample.mask.sum(axis=0)[sample.mask.any(axis=0)]
    assert np.median(thickness) >= 6


def test_an_up_to_date_folder_is_kept_and_another_set_replaced(tmp_path):
    out = write_synthetic(tmp_path / "set", seed=1, **SMALL)
    marker = out / "synthetic.json"
    before = marker.stat().st_mtime_ns
    write_synthetic(out, seed=1, **SMALL)
    assert marker.stat().st_mtime_ns == before
    write_synthetic(out, seed=2, **{**SMALL, "anomaly_count": 1})
    assert json.loads(marker.read_text())["seed"] == 2
    assert len(list((out / "washer" / "test" / "rust").iterdir())) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


def test_refuses_a_foreign_folder_and_bad_sizes(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(DataError, match="not a synthetic data set"):
        write_synthetic(tmp_path / "mine", size=32)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"
    with pytest.raises(UserError, match="--size 16: must be between 32 and 1024"):
        write_synthetic(tmp_path / "small", size=16)


def test_varied_backgrounds_give_each_washer_its_own_and_leave_the_plain_set_alone(tmp_path):
    import numpy as np
    from PIL import Image

    from dualanodiff.data import write_synthetic

    plain = write_synthetic(tmp_path / "plain", seed=0, size=32, train_count=4, test_good_count=1, anomaly_count=1)
    varied = write_synthetic(tmp_path / "varied", seed=0, size=32, train_count=4, test_good_count=1,
                             anomaly_count=1, backgrounds="varied")
    corners = {name: [np.asarray(Image.open(root / "washer" / "train" / "good" / f"{i:03d}.png"))[:3, :3].mean((0, 1))
                      for i in range(4)] for name, root in (("plain", plain), ("varied", varied))}
    spread = {name: np.ptp(np.stack(values), axis=0).max() for name, values in corners.items()}
    assert spread["varied"] > 3 * spread["plain"]
    assert "backgrounds" not in (plain / "synthetic.json").read_text()
    fabric = "fabric/train/good/000.png"
    assert (plain / fabric).read_bytes() == (varied / fabric).read_bytes()  # only the washer changes
