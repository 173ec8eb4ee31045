"""The model's commands through the real entry point: train, generate, resume, bad input, and the demo."""

import filecmp
import os
import subprocess
import sys

import pytest

from dualanodiff.cli import main


def run_cli(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_:
        main([str(arg) for arg in args])
    return exit_.value.code


def test_train_generate_resume_through_the_cli(synthetic_root, micro_base_dir, tmp_path, capsys):
    run = tmp_path / "run"
    train_args = ["train", "--data", synthetic_root, "--object", "washer", "--anomaly", "rust", "--out", run,
                  "--base-model", micro_base_dir, "--resolution", "32", "--steps", "2", "--batch-size", "2",
                  "--rank", "4", "--checkpoint-every", "1", "--no-flip-vertical"]
    assert run_cli(*train_args) == 0
    assert "flip_vertical: False" in capsys.readouterr().out
    assert run_cli(*train_args) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert run_cli(*train_args, "--resume") == 0
    assert "resuming from" in capsys.readouterr().out

    generate_args = ["generate", run, "--num", "2", "--steps", "2", "--seed", "4"]
    assert run_cli(*generate_args, "--out", tmp_path / "a") == 0
    assert "mean_mask_area=" in capsys.readouterr().out
    assert run_cli(*generate_args, "--out", tmp_path / "b") == 0
    for kind in ("image", "fg", "mask"):
        comparison = filecmp.dircmp(tmp_path / "a" / kind, tmp_path / "b" / kind)
        assert comparison.left_list == ["0000.png", "0001.png"] and not comparison.diff_files


def test_bad_input_is_one_line_and_status_2(synthetic_root, tmp_path, capsys):
    assert run_cli("train", "--no-such-option") == 2  # a usage error, not a traceback
    assert "No such option" in capsys.readouterr().err
    assert run_cli("generate", tmp_path, "--num", "1", "--out", tmp_path / "gen") == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "not a training run folder" in error
    assert run_cli("train", "--data", synthetic_root, "--object", "washer", "--anomaly", "dent", "--out",
                   tmp_path / "run") == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "crack" in error and "rust" in error
    assert run_cli("train", "--data", synthetic_root, "--object", "washer", "--anomaly", "rust", "--out",
                   tmp_path / "run2", "--preset", "sd15", "--base-model", tmp_path / "nothing") == 2
    assert "no such folder" in capsys.readouterr().err


def test_demo_end_to_end(tmp_path):
    """The README's main command, through the console entry point, on tiny settings."""
    env = {**os.environ, "DUALANODIFF_CACHE": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-m", "dualanodiff", "demo", "--out", str(tmp_path / "demo"),
                             "--steps", "2", "--num", "2", "--generation-steps", "2"],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "contact_sheet:" in result.stdout
    demo = tmp_path / "demo"
    assert (demo / "contact_sheet.png").stat().st_size > 0
    assert len(list((demo / "generated" / "image").glob("*.png"))) == 2
    assert (demo / "run" / "backgrounds").is_dir()  # the demo trains with BCM
    assert not (tmp_path / "cache").exists()  # the shipped base was used: nothing was pre-trained


def test_an_output_the_machine_refuses_is_one_line(synthetic_root, micro_base_dir, tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    code = run_cli("train", "--data", synthetic_root, "--object", "washer", "--anomaly", "rust",
                   "--out", tmp_path / "file" / "run", "--base-model", micro_base_dir, "--resolution", "32",
                   "--steps", "1")
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(error) == 1 and error[0].startswith("error: ") and "file/run" in error[0]
