"""Sample QC: each reason to reject, rejected samples replaced by the next seeds, counts that add up, the same files
from the same command, and a hopeless run that ends in one line keeping what passed."""

import filecmp

import numpy as np
import pytest

from dualanodiff.cli import main
from dualanodiff.evaluate.sets import load_generated
from dualanodiff.generation import GeneratedSet, GenerateSettings, generate
from dualanodiff.generation.backgrounds import BackgroundBank
from dualanodiff.generation.qc import REASONS, QualityGate, training_mask_areas
from dualanodiff.io import save_image
from dualanodiff.model.config import DualConfig
from dualanodiff.training import Run, TrainSettings, train
from helpers import micro_settings


@pytest.fixture(scope="module")
def bcm_run(synthetic_root, micro_base_dir, tmp_path_factory):
    return train(micro_settings(synthetic_root, micro_base_dir, steps=2, model=DualConfig(bcm=True)),
                 tmp_path_factory.mktemp("qc") / "run")


def _mask(area: int, at: tuple[int, int] = (10, 10)) -> np.ndarray:
    mask = np.zeros((32, 32), bool)
    mask[at[0]:at[0] + area, at[1]:at[1] + 1] = True
    return mask


def test_each_reason_to_reject(tmp_path):
    run = Run(tmp_path, TrainSettings(data_root="d", object="o", anomaly="a"))
    run.save_background("bg", np.zeros((32, 32, 3), np.uint8))
    object_mask = np.zeros((32, 32), bool)
    object_mask[:, :16] = True  # the object is the left half
    run.save_object_mask("normal", "bg", object_mask)
    gate = QualityGate((4 / 1024, 20 / 1024), max_off_object=0.05, max_disagreement=0.2,
                       backgrounds=BackgroundBank(run))

    def record(mask, agreement=0.1):
        return {"mask_area": float(mask.mean()), "branch_agreement": agreement, "background": "bg"}

    assert gate.reason(np.zeros((32, 32), bool), record(np.zeros((32, 32), bool))) == "empty_mask"
    assert gate.reason(_mask(8, at=(10, 20)), record(_mask(8, at=(10, 20)))) == "off_object"
    assert gate.reason(_mask(2), record(_mask(2))) == "mask_area"  # smaller than any training mask / margin
    assert gate.reason(_mask(30), record(_mask(30))) == "mask_area"
    assert gate.reason(_mask(8), record(_mask(8), agreement=0.5)) == "branch_disagreement"
    assert gate.reason(_mask(8), record(_mask(8))) is None
    run.save_object_mask("normal", "bg", np.zeros((32, 32), bool))  # no object found: no off-object check
    blind = QualityGate((4 / 1024, 20 / 1024), max_off_object=0.05, max_disagreement=0.2,
                        backgrounds=BackgroundBank(run))
    assert blind.reason(_mask(8, at=(10, 20)), record(_mask(8, at=(10, 20)))) is None


def test_the_training_masks_set_the_area_range(bcm_run):
    areas = training_mask_areas(bcm_run)
    assert len(areas) == 4 and all(0 < area < 0.5 for area in areas)
    gate = QualityGate.for_run(bcm_run, GenerateSettings(num=1, qc="on", qc_area_margin=3), None)
    assert gate.area_range == pytest.approx((min(areas) / 3, max(areas) * 3))


def _qc_settings(**values):
    # Wide enough for the untrained micro model to pass now and then: some samples pass, some are retried.
    return GenerateSettings(**{"num": 6, "steps": 1, "batch_size": 3, "seed": 4, "qc": "on", "qc_max_tries": 4,
                               "qc_area_margin": 4, "qc_max_disagreement": 0.5, "qc_max_off_object": 0.5, **values})


def test_written_samples_pass_qc_and_the_counts_add_up(bcm_run, tmp_path):
    generated = generate(bcm_run, tmp_path / "gen", _qc_settings())
    qc = generated.meta["summary"]["qc"]
    rejected = generated.rejected.samples()
    assert qc["tried"] == qc["accepted"] + sum(qc["rejected"].values()) == len(generated.samples()) + len(rejected)
    assert set(qc["rejected"]) == set(REASONS) and sum(qc["rejected"].values()) > 0  # this run does reject
    gate = QualityGate.for_run(bcm_run, _qc_settings(), BackgroundBank(bcm_run))
    for sample in generated.samples():
        assert gate.reason(sample.load()[2], sample.record) is None
        assert (sample.record["candidate"] - sample.index) % 6 == 0  # sample i's tries are i, i + num, ...
    for sample in rejected:
        assert sample.record["reason"] in REASONS and sample.record["sample"] == sample.index % 6
    assert (generated.root / "rejected.png").is_file()
    assert len(generated.samples()) + qc["given_up"] == 6


def test_the_same_command_makes_the_same_files_also_after_an_interruption(bcm_run, tmp_path):
    first = generate(bcm_run, tmp_path / "a", _qc_settings())
    second = generate(bcm_run, tmp_path / "b", _qc_settings())
    for sample in second.samples()[1:]:  # as if killed: only the first sample and the rejected tries stay
        for path in (sample.image_path, sample.anomaly_part_path, sample.mask_path):
            path.unlink()
        (second.root / "samples" / f"{sample.index:04d}.json").unlink()
    (second.root / "meta.json").unlink()
    second = generate(bcm_run, tmp_path / "b", _qc_settings())
    assert [s.index for s in first.samples()] == [s.index for s in second.samples()]
    for a, b in zip(first.samples(), second.samples(), strict=True):
        assert filecmp.cmp(a.mask_path, b.mask_path, shallow=False) and a.record == b.record
    assert first.meta["summary"]["qc"] == second.meta["summary"]["qc"]


def test_a_hopeless_run_ends_in_one_line_keeping_what_passed(bcm_run, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["generate", str(bcm_run.root), "--out", str(tmp_path / "gen"), "--num", "3", "--steps", "1",
              "--qc", "on", "--qc-max-tries", "2", "--qc-max-disagreement", "0", "--qc-area-margin", "1"])
    assert exit_.value.code == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("QC:")]
    assert len(lines) == 1 and "3 sample(s) given up after --qc-max-tries" in lines[0], lines
    generated = GeneratedSet.open(tmp_path / "gen")
    assert generated.meta["summary"]["qc"]["tried"] == 6 and not generated.samples()


def test_the_evaluations_never_train_on_an_empty_mask(bcm_run, tmp_path, capsys):
    generated = generate(bcm_run, tmp_path / "gen", GenerateSettings(num=3, steps=1, qc="off"))
    sample = generated.samples()[0]
    save_image(sample.mask_path, np.zeros_like(sample.load()[2], np.uint8))
    images, masks = load_generated(generated, 32)
    assert len(images) == 2 and masks.reshape(2, -1).any(axis=1).all()
    assert "1 sample(s) with an empty mask left out" in capsys.readouterr().out
    assert len(load_generated(generated, 32, training=False)[0]) == 3
