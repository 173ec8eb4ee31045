"""Generation: the pipeline API, determinism per sample, resumable GEN folders, masks and figures."""

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from dualanodiff.errors import ModelError, UserError
from dualanodiff.generation import DualAnoDiffPipeline, GeneratedSet, GenerateSettings, generate
from dualanodiff.model.config import DualConfig
from dualanodiff.training import train
from helpers import micro_settings


def _no_qc(**values) -> GenerateSettings:
    """The micro model draws noise, which QC would reject: these tests are about everything else."""
    return GenerateSettings(qc="off", **values)


@pytest.fixture(scope="module")
def trained_runs(synthetic_root, micro_base_dir, tmp_path_factory):
    """Two briefly trained micro runs on the synthetic washer's rust: plain, and with BCM."""
    folder = tmp_path_factory.mktemp("runs")
    plain = train(micro_settings(synthetic_root, micro_base_dir, steps=2), folder / "plain").root
    bcm = train(
        micro_settings(synthetic_root, micro_base_dir, steps=2, model=DualConfig(bcm=True)), folder / "bcm"
    ).root
    return plain, bcm


def test_pipeline_returns_triplets_with_figures(trained_runs):
    pipe = DualAnoDiffPipeline.from_pretrained(trained_runs[0])
    out = pipe([0, 1], seed=3, steps=3, progress=False)
    assert len(out.images) == len(out.anomaly_parts) == len(out.masks) == 2
    assert out.images[0].shape == (32, 32, 3) and out.images[0].dtype == np.uint8
    assert out.masks[0].shape == (32, 32) and out.masks[0].dtype == bool
    record = out.records[0]
    assert record["index"] == 0 and record["seed"] == 3
    assert 0 <= record["mask_area"] <= 1
    assert record["branch_agreement"] is None or 0 <= record["branch_agreement"] <= 1


def test_a_sample_depends_on_seed_and_index_only(trained_runs):
    pipe = DualAnoDiffPipeline.from_pretrained(trained_runs[0])
    together = pipe([0, 1, 2], seed=5, steps=3, progress=False)
    alone = pipe([2], seed=5, steps=3, progress=False)
    # Batch size may change the order of float sums in the convolutions: allow the last bit of a uint8.
    assert np.abs(together.images[2].astype(int) - alone.images[0].astype(int)).max() <= 1
    again = pipe([0], seed=5, steps=3, progress=False)
    assert np.abs(together.images[0].astype(int) - again.images[0].astype(int)).max() <= 1
    other_seed = pipe([0], seed=6, steps=3, progress=False)
    assert np.abs(together.images[0].astype(int) - other_seed.images[0].astype(int)).max() > 10


def test_attention_masks_come_from_the_anomaly_token(trained_runs):
    pipe = DualAnoDiffPipeline.from_pretrained(trained_runs[0])
    out = pipe([0, 1], seed=0, steps=2, segmenter="attention", progress=False)
    assert all(mask.shape == (32, 32) and mask.any() and not mask.all() for mask in out.masks)


def test_generate_resumes_without_duplicates_and_matches_a_fresh_run(trained_runs, tmp_path):
    fresh = generate(trained_runs[0], tmp_path / "fresh", _no_qc(num=4, steps=2, batch_size=4, seed=1))
    partial = generate(trained_runs[0], tmp_path / "partial", _no_qc(num=4, steps=2, batch_size=2, seed=1))
    # Simulate a job killed while writing sample 2: its record never made it, its image did.
    (partial.root / "samples" / "0002.json").unlink()
    (partial.root / "samples" / "0003.json").unlink()
    (partial.root / "fg" / "0003.png").unlink()
    resumed = generate(trained_runs[0], tmp_path / "partial", _no_qc(num=4, steps=2, batch_size=3, seed=1))
    assert resumed.completed_indices() == {0, 1, 2, 3}
    for a, b in zip(fresh.samples(), resumed.samples(), strict=True):
        for left, right in zip(a.load(), b.load(), strict=True):
            assert np.abs(left.astype(int) - right.astype(int)).max() <= 1
    meta = json.loads((resumed.root / "meta.json").read_text())
    assert meta["num"] == 4 and len(meta["samples"]) == 4 and meta["object"] == "washer"
    assert meta["split"]["train"] and not set(meta["split"]["train"]) & set(meta["split"]["test"])
    assert "mean_mask_area" in meta["summary"]


def test_generate_refuses_to_mix_settings(trained_runs, tmp_path):
    generate(trained_runs[0], tmp_path / "gen", _no_qc(num=1, steps=2))
    with pytest.raises(Exception, match="another settings"):
        generate(trained_runs[0], tmp_path / "gen", _no_qc(num=1, steps=3))


def test_bcm_generation_records_backgrounds_and_preservation(trained_runs, tmp_path):
    generated = generate(
        trained_runs[1], tmp_path / "gen", _no_qc(num=3, steps=2, background_every=2, seed=0)
    )
    records = [sample.record for sample in generated.samples()]
    assert records[0]["background"] == records[1]["background"]  # a background lasts `background_every` samples
    assert all(0 <= r["background_preservation"] <= 1 for r in records)
    assert "mean_background_preservation" in generated.meta["summary"]
    # A run without BCM can be measured against the BCM run's backgrounds, for a side-by-side comparison.
    measured = generate(
        trained_runs[0],
        tmp_path / "plain",
        _no_qc(num=3, steps=2, background_every=2, backgrounds=trained_runs[1]),
    )
    assert [s.record["background"] for s in measured.samples()] == [r["background"] for r in records]


def test_export_mvtec_layout(trained_runs, tmp_path):
    generate(trained_runs[0], tmp_path / "gen", _no_qc(num=2, steps=2, export_mvtec=tmp_path / "mvtec"))
    assert sorted(p.name for p in (tmp_path / "mvtec" / "washer" / "test" / "rust").iterdir()) == [
        "0000.png",
        "0001.png",
    ]
    assert (tmp_path / "mvtec" / "washer" / "ground_truth" / "rust" / "0001_mask.png").is_file()
    shutil.rmtree(tmp_path / "mvtec")
    assert GeneratedSet.open(tmp_path / "gen").anomaly == "rust"


def test_a_gen_never_mixes_the_samples_of_two_runs(trained_runs, tmp_path):
    other = tmp_path / "other-run"
    shutil.copytree(trained_runs[0], other)
    weights = load_file(other / "weights.safetensors")
    first = next(iter(weights))
    weights[first] = weights[first] + 1  # another model, same settings
    save_file(weights, str(other / "weights.safetensors"))
    generate(trained_runs[0], tmp_path / "gen", _no_qc(num=2, steps=1))
    with pytest.raises(UserError, match="another producer"):
        generate(other, tmp_path / "gen", _no_qc(num=2, steps=1))
    assert GeneratedSet.open(tmp_path / "gen").meta["run"] == str(trained_runs[0])


def test_non_finite_weights_stop_generation_in_one_line(trained_runs, tmp_path):
    broken = tmp_path / "broken-run"
    shutil.copytree(trained_runs[0], broken)
    weights = {name: torch.full_like(tensor, float("nan")) for name, tensor in
               load_file(broken / "weights.safetensors").items()}
    save_file(weights, str(broken / "weights.safetensors"))
    with pytest.raises(ModelError, match=r"denoising step 1 of 2: .*non-finite values for sample\(s\) 0, 1;"):
        generate(broken, tmp_path / "gen", _no_qc(num=2, steps=2))
    assert not GeneratedSet.open(tmp_path / "gen").completed_indices()


def test_a_second_writer_of_one_gen_is_refused(trained_runs, tmp_path):
    from dualanodiff.io import folder_lock

    with folder_lock(tmp_path / "gen"), pytest.raises(UserError, match="another dualanodiff process"):
        generate(trained_runs[0], tmp_path / "gen", _no_qc(num=1, steps=1))


def test_export_anomalib_folder_layout(trained_runs, tmp_path):
    generate(trained_runs[0], tmp_path / "gen", _no_qc(num=2, steps=1, export_anomalib=str(tmp_path / "al")))
    root = tmp_path / "al"
    assert sorted(p.name for p in (root / "rust").iterdir()) == ["rust_0000.png", "rust_0001.png"]
    assert sorted(p.name for p in (root / "mask" / "rust").iterdir()) == ["rust_0000.png", "rust_0001.png"]
    assert len(list((root / "good").iterdir())) == 60 and len(list((root / "good_test").iterdir())) == 8
