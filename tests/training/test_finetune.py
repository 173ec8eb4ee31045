"""Training: the run folder's contents, resume to the same weights, and refusals."""

import csv
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from dualanodiff.errors import UserError
from dualanodiff.model.config import DualConfig
from dualanodiff.training import train
from helpers import micro_settings


def test_run_folder_is_complete_and_self_contained(synthetic_root, micro_base_dir, tmp_path):
    run = train(micro_settings(synthetic_root, micro_base_dir), tmp_path / "run").root
    config = json.loads((run / "config.json").read_text())
    assert config["steps"] == 4 and config["model"]["rank"] == 4 and config["base_model_path"] == "base"
    assert config["flip_horizontal"] and config["flip_vertical"]
    split = json.loads((run / "split.json").read_text())
    assert len(split["train"]) == 4 and len(split["test"]) == 8 and not set(split["train"]) & set(split["test"])
    rows = list(csv.DictReader((run / "loss.csv").open()))
    assert [int(row["step"]) for row in rows] == [1, 2, 3, 4]
    assert all(float(row["loss"]) > 0 for row in rows)
    assert (run / "loss.png").stat().st_size > 0
    weights = load_file(run / "weights.safetensors")
    assert weights and all("lora" in name or "saim" in name or "conv_out" in name for name in weights)
    assert (run / "base" / "unet").is_dir()  # the tiny base travels with the run


def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(synthetic_root, micro_base_dir, tmp_path):
    config = micro_settings(synthetic_root, micro_base_dir)
    straight = train(config, tmp_path / "straight").root
    interrupted = train(config, tmp_path / "interrupted").root
    # Make the second run look killed between step 2 and step 4: its last checkpoint and weights never written.
    shutil.rmtree(interrupted / "checkpoints" / "step-000004")
    (interrupted / "weights.safetensors").unlink()
    train(config, interrupted, resume=True)
    expected, resumed = load_file(straight / "weights.safetensors"), load_file(interrupted / "weights.safetensors")
    assert expected.keys() == resumed.keys()
    assert all(torch.equal(expected[name], resumed[name]) for name in expected)
    assert (interrupted / "loss.csv").read_text() == (straight / "loss.csv").read_text()


def test_existing_runs_are_protected(synthetic_root, micro_base_dir, tmp_path):
    config = micro_settings(synthetic_root, micro_base_dir, steps=1, checkpoint_every=1)
    train(config, tmp_path / "run")
    with pytest.raises(UserError, match="pass --resume"):
        train(config, tmp_path / "run")
    with pytest.raises(UserError, match="other settings"):
        train(micro_settings(synthetic_root, micro_base_dir, steps=1, checkpoint_every=1, lr=0.5),
              tmp_path / "run", resume=True)


def test_bcm_run_stores_object_masks_and_backgrounds(synthetic_root, micro_base_dir, tmp_path):
    run = train(micro_settings(synthetic_root, micro_base_dir, steps=1, model=DualConfig(bcm=True)),
                tmp_path / "r").root
    assert len(list((run / "object_masks" / "anomaly").glob("*.png"))) == 4  # the training images
    assert len(list((run / "object_masks" / "normal").glob("*.png"))) == 60
    assert len(list((run / "backgrounds").glob("*.png"))) == 60
    assert any(".bcm." in name for name in load_file(run / "weights.safetensors"))


def test_invalid_settings_are_one_line_errors(synthetic_root, micro_base_dir, tmp_path):
    with pytest.raises(UserError, match="--steps must be at least 1"):
        train(micro_settings(synthetic_root, micro_base_dir, steps=0), tmp_path / "a")
    with pytest.raises(UserError, match="--preset must be one of"):
        train(micro_settings(synthetic_root, micro_base_dir, preset="huge"), tmp_path / "b")


def test_a_damaged_latest_checkpoint_falls_back_to_the_one_before(synthetic_root, micro_base_dir, tmp_path, capsys):
    config = micro_settings(synthetic_root, micro_base_dir)
    straight = train(config, tmp_path / "straight").root
    damaged = train(config, tmp_path / "damaged").root
    (damaged / "checkpoints" / "step-000004" / "state.pt").write_bytes(b"not a checkpoint")
    (damaged / "weights.safetensors").unlink()
    train(config, damaged, resume=True)
    assert "step-000004/state.pt: refused" in capsys.readouterr().err
    expected, resumed = load_file(straight / "weights.safetensors"), load_file(damaged / "weights.safetensors")
    assert all(torch.equal(expected[name], resumed[name]) for name in expected)


def test_a_resolution_the_base_cannot_divide_is_refused_before_training(synthetic_root, micro_base_dir, tmp_path):
    with pytest.raises(UserError, match="--resolution 30: this base model needs a multiple of 4"):
        train(micro_settings(synthetic_root, micro_base_dir, resolution=30), tmp_path / "run")
    assert not (tmp_path / "run" / "weights.safetensors").exists()
