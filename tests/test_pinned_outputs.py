"""Behaviour pinned across refactors: a small BCM run trained and generated through the real CLI must reproduce the
adapters and the triplets recorded in tests/pinned/.

The references were made by this very test (`DUALANODIFF_REPIN=1 python -m pytest tests/test_pinned_outputs.py`)
on the code before the structure change; re-pin only for a change that is meant to change the numbers, and say so
in its commit. Another CPU may sum floats in another order, hence the tolerances: far below what any change to the
method, its defaults or its random draws would move. The adapters' tolerance is absolute, WEIGHT_ATOL: Adam moves a
zero-initialised weight by about its learning rate (2e-3) per step whatever the gradient's size, so where a gradient
is near zero another CPU's rounding moves it by far more than its relative error (up to 8.7e-6, on an AVX-512/AMX
Xeon, against weights of at most 5e-3), while any real change moves it by the order of a step.
"""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from dualanodiff.cli import main

PINNED = Path(__file__).parent / "pinned"
REPIN = os.environ.get("DUALANODIFF_REPIN") == "1"
WEIGHT_ATOL = 5e-5  # see the module docstring


def run_cli(*args) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([str(arg) for arg in args])
    assert exit_.value.code == 0


def test_train_and_generate_reproduce_the_pinned_outputs(synthetic_root, micro_base_dir, tmp_path,
                                                         one_torch_thread):
    run, gen = tmp_path / "run", tmp_path / "gen"
    run_cli("train", "--data", synthetic_root, "--object", "washer", "--anomaly", "rust", "--out", run,
            "--base-model", micro_base_dir, "--resolution", "32", "--steps", "3", "--batch-size", "2",
            "--rank", "4", "--checkpoint-every", "3", "--seed", "7", "--bcm", "--canvas", "image")
    run_cli("generate", run, "--out", gen, "--num", "3", "--steps", "3", "--batch-size", "2", "--seed", "1",
            "--qc", "off", "--device", "cpu")
    weights = load_file(run / "weights.safetensors")
    images = {f"{kind}/{index:04d}": np.asarray(Image.open(gen / kind / f"{index:04d}.png"))
              for kind in ("image", "fg", "mask") for index in range(3)}
    if REPIN:
        PINNED.mkdir(exist_ok=True)
        save_file(weights, str(PINNED / "weights.safetensors"))
        np.savez_compressed(PINNED / "triplets.npz", **images)
        pytest.skip("re-pinned the outputs")
    expected_weights = load_file(PINNED / "weights.safetensors")
    assert weights.keys() == expected_weights.keys()
    for name, tensor in expected_weights.items():
        torch.testing.assert_close(weights[name], tensor, rtol=1e-4, atol=WEIGHT_ATOL, msg=name)
    expected_images = np.load(PINNED / "triplets.npz")
    assert set(expected_images.files) == set(images)
    for name, pixels in images.items():
        difference = np.abs(pixels.astype(int) - expected_images[name].astype(int))
        assert difference.max() <= 1 and (difference == 0).mean() >= 0.99, name
