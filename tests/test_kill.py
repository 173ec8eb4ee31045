"""kill -9 at several points of `train`, `generate` and `sweep`, then the same command again: the resumed outputs
equal those of an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from dualanodiff.cli import main

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}


def run_cli(*args) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([str(arg) for arg in args])
    assert exit_.value.code == 0


def kill_when(args, ready, timeout: float = 120) -> None:
    """Start `dualanodiff ARGS` and SIGKILL it as soon as `ready()` holds; the kill must come before it ends."""
    process = subprocess.Popen([sys.executable, "-m", "dualanodiff", *map(str, args)], env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, "the command ended before the point to kill it at"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL


def _train_args(data, base, out, steps):
    return ["train", "--data", data, "--object", "washer", "--anomaly", "rust", "--out", out, "--base-model", base,
            "--resolution", "32", "--steps", steps, "--batch-size", "2", "--rank", "4", "--checkpoint-every", "5",
            "--seed", "3"]


@pytest.mark.parametrize("kill_after", ["step-000005", "step-000015"])
def test_train_killed_then_resumed_reaches_the_same_weights(synthetic_root, micro_base_dir, tmp_path, kill_after,
                                                             one_torch_thread):
    run_cli(*_train_args(synthetic_root, micro_base_dir, tmp_path / "straight", "30"))
    killed = tmp_path / "killed"
    kill_when(_train_args(synthetic_root, micro_base_dir, killed, "30"),
              lambda: (killed / "checkpoints" / kill_after / "state.pt").is_file())
    run_cli(*_train_args(synthetic_root, micro_base_dir, killed, "30"), "--resume")
    expected, resumed = load_file(tmp_path / "straight" / "weights.safetensors"), load_file(
        killed / "weights.safetensors")
    assert expected.keys() == resumed.keys()
    assert all(torch.equal(expected[name], resumed[name]) for name in expected)
    assert (killed / "loss.csv").read_text() == (tmp_path / "straight" / "loss.csv").read_text()


def _pixels(folder: Path) -> dict[str, np.ndarray]:
    return {str(path.relative_to(folder)): np.asarray(Image.open(path)) for path in sorted(folder.rglob("*.png"))}


@pytest.mark.parametrize("kill_after", [1, 5])
def test_generate_killed_then_resumed_writes_what_an_uninterrupted_run_writes(synthetic_root, micro_base_dir,
                                                                              tmp_path, kill_after,
                                                                              one_torch_thread):
    run = tmp_path / "run"
    run_cli(*_train_args(synthetic_root, micro_base_dir, run, "2"))
    generate = ["generate", run, "--num", "12", "--steps", "8", "--batch-size", "2", "--device", "cpu", "--qc", "off"]
    run_cli(*generate, "--out", tmp_path / "straight")
    killed = tmp_path / "killed"
    kill_when([*generate, "--out", killed], lambda: (killed / "samples" / f"{kill_after:04d}.json").is_file())
    run_cli(*generate, "--out", killed)
    assert not list(killed.rglob(".*.tmp"))  # what the killed writer left half-written is gone
    straight, resumed = _pixels(tmp_path / "straight"), _pixels(killed)
    assert straight.keys() == resumed.keys() and len(straight) == 36
    assert all(np.array_equal(straight[name], resumed[name]) for name in straight)


def test_a_sweep_killed_then_resumed_finishes_with_the_same_results(synthetic_root, micro_base_dir, tmp_path):
    sweep = ["sweep", "--data", synthetic_root, "--objects", "washer", "--num", "2", "--base-model", micro_base_dir,
             "--resolution", "32", "--steps", "2", "--batch-size", "2", "--rank", "4", "--generation-steps", "1",
             "--qc", "off", "--eval-epochs", "1", "--eval-resolution", "32", "--eval-base-width", "2",
             "--eval-device", "cpu"]
    killed = tmp_path / "killed"
    first_job = killed / "jobs" / "generate" / "washer" / "crack.json"
    kill_when([*sweep, "--out", killed], lambda: first_job.is_file() and '"done"' in first_job.read_text())
    run_cli(*sweep, "--out", killed)
    run_cli(*sweep, "--out", tmp_path / "straight")
    for kind in ("runs", "generated"):
        straight, resumed = _pixels(tmp_path / "straight" / kind), _pixels(killed / kind)
        assert straight.keys() == resumed.keys() and straight
        assert all(np.array_equal(straight[name], resumed[name]) for name in straight)
    rows = [(killed / "results.csv").read_text().splitlines(), (tmp_path / "straight" / "results.csv").read_text()
            .splitlines()]
    assert [row.split(",")[:3] for row in rows[0]] == [row.split(",")[:3] for row in rows[1]]
