"""The few-shot split: first ceil(n/3) by file name train, never overlapping, train_count override, split.json."""

import json
from pathlib import Path

import pytest

from dualanodiff.data import AnomalySample, make_split, read_split, split_rule_text, write_split
from dualanodiff.errors import DataError, UserError


def _samples(n: int, folder: str = "/data/widget/test/scratch") -> list[AnomalySample]:
    # Deliberately out of order, with names whose string order differs from their numeric order.
    names = [f"img_{i}.png" for i in range(n)][::-1]
    return [AnomalySample(Path(folder, name), Path(folder + "_masks", name)) for name in names]


@pytest.mark.parametrize(("n", "train"), [(1, 1), (2, 1), (3, 1), (4, 2), (7, 3), (12, 4)])
def test_first_third_rounded_up_trains(n, train):
    samples = _samples(n)
    split = make_split(samples)
    assert len(split.train) == train and len(split.test) == n - train
    ordered = sorted(sample.name for sample in samples)
    assert [s.name for s in split.train] == ordered[:train]
    assert [s.name for s in split.test] == ordered[train:]
    assert not {s.name for s in split.train} & {s.name for s in split.test}


def test_sorting_is_by_file_name_string():
    names = [s.name for s in make_split(_samples(12)).train]
    assert names == ["img_0.png", "img_1.png", "img_10.png", "img_11.png"]


@pytest.mark.parametrize(("n", "count"), [(1, 1), (2, 1), (7, 1), (7, 6), (12, 5)])
def test_train_count_takes_the_first_k(n, count):
    split = make_split(_samples(n), train_count=count)
    assert len(split.train) == count and len(split.test) == n - count
    assert max(s.name for s in split.train) < min((s.name for s in split.test), default="~")


@pytest.mark.parametrize(("n", "count"), [(7, 0), (7, 7), (7, 8), (2, 2), (1, 2), (3, -1)])
def test_train_count_must_leave_a_test_image(n, count):
    with pytest.raises(DataError, match=f"train count {count} does not fit {n} images"):
        make_split(_samples(n), train_count=count)


def test_no_images_is_too_few_to_train():
    with pytest.raises(DataError, match="too few images to train"):
        make_split([])


def test_a_name_given_twice_is_refused():
    twice = _samples(3) + _samples(1, folder="/elsewhere")
    with pytest.raises(DataError, match="appears twice"):
        make_split(twice)


def test_write_and_read_split(tmp_path):
    split = make_split(_samples(7))
    path = write_split(tmp_path / "run" / "split.json", split, object="widget", anomaly="scratch",
                       rule_text=split_rule_text())
    record = read_split(path)
    assert record["object"] == "widget" and record["anomaly"] == "scratch"
    assert record["train"] == ["img_0.png", "img_1.png", "img_2.png"]
    assert record["test"] == ["img_3.png", "img_4.png", "img_5.png", "img_6.png"]
    assert record["train_count"] == 3 and "ceil(n/3)" in record["rule"]
    assert [p.name for p in path.parent.iterdir()] == ["split.json"]  # no temporary file left behind


def test_read_split_refuses_bad_files(tmp_path):
    with pytest.raises(DataError, match="split file not found"):
        read_split(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(UserError, match=r"broken\.json: not valid JSON"):
        read_split(broken)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"train": []}))
    with pytest.raises(DataError, match="not a split file"):
        read_split(other)
    path = write_split(tmp_path / "split.json", make_split(_samples(4)), object="w", anomaly="s", rule_text="r")
    record = json.loads(path.read_text())
    record["test"].append(record["train"][0])
    path.write_text(json.dumps(record))
    with pytest.raises(DataError, match="on both the train and the test side"):
        read_split(path)
