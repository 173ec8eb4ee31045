import shutil
from pathlib import Path

import numpy as np
import pytest

from dualanodiff.data import load_source, make_split
from dualanodiff.errors import UserError
from dualanodiff.evaluate.sets import held_out, load_generated, open_generated_sets, recorded_split
from dualanodiff.generation.generated_set import GeneratedSet
from dualanodiff.io import read_json, write_json


def _copy(gen: Path, tmp_path: Path, name: str) -> Path:
    return Path(shutil.copytree(gen, tmp_path / name))


def _edit_meta(gen: Path, **changes) -> None:
    meta = read_json(gen / "meta.json")
    meta.update(changes)
    write_json(gen / "meta.json", meta)


def test_held_out_uses_the_recorded_test_sides_and_the_normal_test_images(synthetic_root, washer_gens):
    source = load_source(synthetic_root)
    gens = open_generated_sets(list(washer_gens.values()))
    test = held_out(source, gens)
    assert test.types == ["crack", "rust"]
    for anomaly in ("crack", "rust"):
        expected = make_split(source.anomaly_samples("washer", anomaly)).test
        assert test.anomalies[anomaly] == expected
        recorded = read_json(washer_gens[f"croppaste-{anomaly}"] / "meta.json")["split"]["test"]
        assert [s.name for s in test.anomalies[anomaly]] == recorded
    assert test.normal == source.normal_test("washer")


def test_generators_with_different_splits_are_tested_on_images_neither_saw(synthetic_root, washer_gens, tmp_path):
    source = load_source(synthetic_root)
    samples = source.anomaly_samples("washer", "crack")
    smaller = _copy(washer_gens["perlin-crack"], tmp_path, "perlin-k2")
    split = make_split(samples, train_count=6)
    _edit_meta(smaller, split={"train": [s.name for s in split.train], "test": [s.name for s in split.test],
                               "train_count": 6})
    test = held_out(source, open_generated_sets([washer_gens["croppaste-crack"], smaller]))
    assert test.anomalies["crack"] == split.test  # 4 of 12 train on one side, 6 on the other


def test_a_training_image_on_the_test_side_is_refused(synthetic_root, washer_gens, tmp_path):
    source = load_source(synthetic_root)
    leaky = _copy(washer_gens["perlin-crack"], tmp_path, "leaky")
    names = [s.name for s in source.anomaly_samples("washer", "crack")]
    _edit_meta(leaky, split={"train": names[:5], "test": names[4:], "train_count": None})
    with pytest.raises(UserError, match=r"trained on .*004.png, which is a test image"):
        held_out(source, open_generated_sets([leaky]))


def test_a_missing_split_is_recomputed_with_the_recorded_train_count(synthetic_root, washer_gens, tmp_path):
    source = load_source(synthetic_root)
    bare = _copy(washer_gens["croppaste-rust"], tmp_path, "bare")
    meta = read_json(bare / "meta.json")
    del meta["split"]
    meta["settings"]["train_count"] = 3
    write_json(bare / "meta.json", meta)
    split = recorded_split(GeneratedSet.open(bare), source)
    assert [s.name for s in split.train] == ["000.png", "001.png", "002.png"]
    assert len(split.test) == 9


def test_a_split_naming_unknown_images_is_refused(synthetic_root, washer_gens, tmp_path):
    source = load_source(synthetic_root)
    odd = _copy(washer_gens["croppaste-rust"], tmp_path, "odd")
    _edit_meta(odd, split={"train": ["zzz.png"], "test": ["001.png"]})
    with pytest.raises(UserError, match=r"zzz.png"):
        recorded_split(GeneratedSet.open(odd), source)


def test_gens_of_another_object_empty_or_repeated_are_refused(washer_gens, tmp_path):
    other = _copy(washer_gens["croppaste-rust"], tmp_path, "fabric-gen")
    _edit_meta(other, object="fabric")
    with pytest.raises(UserError, match="holds object 'fabric', not 'washer'"):
        open_generated_sets([washer_gens["croppaste-crack"], other])
    empty = tmp_path / "empty"
    GeneratedSet.create(empty, method="x", object="washer", anomaly="crack", settings={})
    with pytest.raises(UserError, match="no complete samples"):
        open_generated_sets([empty])
    with pytest.raises(UserError, match="given twice"):
        open_generated_sets([washer_gens["croppaste-crack"], washer_gens["croppaste-crack"]])
    with pytest.raises(UserError, match="no generated folders"):
        open_generated_sets([])


def test_load_generated_resizes_images_and_keeps_masks_binary(washer_gens):
    images, masks = load_generated(GeneratedSet.open(washer_gens["croppaste-crack"]), 32)
    assert images.shape == (10, 32, 32, 3) and images.dtype == np.uint8
    assert masks.shape == (10, 32, 32) and masks.dtype == bool
    assert masks.reshape(10, -1).any(axis=1).all()
