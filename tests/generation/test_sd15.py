"""The Stable Diffusion path through the real CLI: `train --preset sd15 --base-model DIR`, then `generate`, on an
SD-1.x-like folder (PNDM config, epsilon) and an SD-2.x-like one (DDIM config, v-prediction, linear projections,
upcast attention, per-level heads, a 64-wide text encoder), with and without BCM (both forms), every scheduler and
both mask methods. Each base is trained from a relative `--base-model` in one folder and generated from in another;
the resolution is left to the base's own."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from dualanodiff.cli import main
from dualanodiff.generation.pipeline import SCHEDULERS
from sd_like import KINDS, RESOLUTION, save_sd_like

BCM_VARIANTS = {"plain": [], "additive": ["--bcm", "--bcm-form", "additive"],
                "gated": ["--bcm", "--bcm-form", "gated"]}
TINY_TRAINING = ["--steps", "1", "--batch-size", "2", "--rank", "2", "--seed", "3"]


def run_cli(*args) -> int:
    with pytest.raises(SystemExit) as exit_:
        main([str(arg) for arg in args])
    return exit_.value.code


def train_args(data, base, out, *extra) -> list:
    return ["train", "--data", data, "--object", "washer", "--anomaly", "rust", "--out", out, "--preset", "sd15",
            "--base-model", base, *TINY_TRAINING, *extra]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The folder holding both SD-like bases, as `models/sd1` and `models/sd2`; training runs from here."""
    root = tmp_path_factory.mktemp("models")
    for kind in KINDS:
        save_sd_like(root / kind, kind)
    return root


@pytest.fixture(scope="module", params=[(kind, bcm) for kind in KINDS for bcm in BCM_VARIANTS],
                ids=lambda param: "-".join(param))
def sd_run(request, models, synthetic_root):
    """One sd15 run per (base, BCM variant), trained once for the module with a relative --base-model."""
    kind, bcm = request.param
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(models)
        assert run_cli(*train_args(synthetic_root, kind, f"runs/{kind}-{bcm}", *BCM_VARIANTS[bcm])) == 0
    return kind, bcm, models / "runs" / f"{kind}-{bcm}"


def test_the_run_records_the_absolute_base_and_its_own_resolution(sd_run, models):
    kind, bcm, run = sd_run
    config = json.loads((run / "config.json").read_text())
    assert config["preset"] == "sd15" and config["base_model"] == str(models / kind)
    assert config["base_model_path"] == str(models / kind)  # never relative to the folder training ran in
    assert config["resolution"] == RESOLUTION[kind]  # UNet sample_size x the VAE's downscale, not 512
    assert config["model"]["bcm"] == (bcm != "plain")
    if bcm != "plain":
        assert config["model"]["bcm_form"] == bcm
        assert (run / "backgrounds").is_dir()


@pytest.mark.parametrize("mask_method", ["threshold", "attention"])
@pytest.mark.parametrize("scheduler", list(SCHEDULERS))
def test_generate_from_another_folder(sd_run, scheduler, mask_method, tmp_path, monkeypatch, capsys):
    kind, bcm, run = sd_run
    monkeypatch.chdir(tmp_path)  # where the relative --base-model does not exist
    assert run_cli("generate", run, "--num", "2", "--steps", "2", "--batch-size", "2", "--out", "gen",
                   "--scheduler", scheduler, "--mask-method", mask_method, "--device", "cpu", "--qc", "off") == 0
    summary = capsys.readouterr().out
    assert "mean_mask_area=" in summary
    assert ("mean_background_preservation=" in summary) == (bcm != "plain")  # BCM's own backgrounds
    meta = json.loads((tmp_path / "gen" / "meta.json").read_text())
    assert meta["settings"]["scheduler"] == scheduler and meta["settings"]["mask_method"] == mask_method
    side = RESOLUTION[kind]
    for folder in ("image", "fg", "mask"):
        files = sorted((tmp_path / "gen" / folder).glob("*.png"))
        assert [file.name for file in files] == ["0000.png", "0001.png"]
        assert all(Image.open(file).size == (side, side) for file in files)
    images = [np.asarray(Image.open(tmp_path / "gen" / "image" / f"000{i}.png")) for i in range(2)]
    assert not np.array_equal(*images)  # two samples, two noises


def test_an_explicit_resolution_wins_and_resume_sees_the_resolved_one(models, synthetic_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert run_cli(*train_args(synthetic_root, models / "sd2", run, "--resolution", "16")) == 0
    assert json.loads((run / "config.json").read_text())["resolution"] == 16
    default = tmp_path / "default"
    assert run_cli(*train_args(synthetic_root, models / "sd2", default)) == 0
    capsys.readouterr()
    # The stored resolution (the base's own) is what a resume without --resolution resolves to: the same settings.
    assert run_cli(*train_args(synthetic_root, models / "sd2", default, "--resume")) == 0
    assert run_cli(*train_args(synthetic_root, models / "sd2", default, "--resume", "--resolution", "16")) == 2
    assert "other settings than the run was started with (resolution)" in capsys.readouterr().err
    assert run_cli("generate", run, "--num", "1", "--steps", "1", "--out", tmp_path / "gen", "--device", "cpu",
                   "--qc", "off") == 0
    assert Image.open(tmp_path / "gen" / "image" / "0000.png").size == (16, 16)


def test_a_scheduler_that_cannot_serve_the_prediction_type_is_refused_in_one_line(synthetic_root, micro_base_dir,
                                                                                  tmp_path, capsys):
    run = tmp_path / "run"  # the tiny preset's base predicts the clean sample (x0), which PNDM cannot step
    assert run_cli("train", "--data", synthetic_root, "--object", "washer", "--anomaly", "rust", "--out", run,
                   "--base-model", micro_base_dir, "--resolution", "16", *TINY_TRAINING) == 0
    capsys.readouterr()
    generate = ["generate", run, "--num", "1", "--steps", "2", "--device", "cpu", "--qc", "off"]
    assert run_cli(*generate, "--scheduler", "pndm", "--out", tmp_path / "pndm") == 2
    stderr = capsys.readouterr().err
    error = stderr.strip().splitlines()[-1]  # the lines before it are the model loader's progress bars
    assert error.startswith("error: ") and "Traceback" not in stderr and stderr.count("error") == 1
    assert "--scheduler pndm" in error and "'sample'" in error and "ddim or dpm" in error
    assert not (tmp_path / "pndm" / "image").exists()
    assert run_cli(*generate, "--scheduler", "dpm", "--out", tmp_path / "dpm") == 0


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
@pytest.mark.parametrize("scheduler", list(SCHEDULERS))
def test_the_scheduler_table_matches_what_diffusers_steps(scheduler, prediction_type):
    """A scheduler listed as serving a prediction type steps it; one not listed raises (as PNDM does for x0)."""
    scheduler_class, served = SCHEDULERS[scheduler]
    sampler = scheduler_class.from_config({"num_train_timesteps": 1000, "prediction_type": prediction_type,
                                           "skip_prk_steps": True, "steps_offset": 1})  # as SD's configs
    sampler.set_timesteps(2)
    sample = torch.randn(1, 4, 4, 4)
    try:
        for t in sampler.timesteps:
            sample = sampler.step(torch.randn_like(sample), t, sample).prev_sample
    except ValueError as error:
        assert "prediction_type" in str(error) and prediction_type not in served, error
    else:
        assert prediction_type in served and torch.isfinite(sample).all()
