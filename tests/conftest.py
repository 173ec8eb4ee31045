"""Fixtures shared by the whole test suite."""

import os
from pathlib import Path

# Tests start PyTorch processes of their own (the demo, sharded generation, Ray workers) beside this one; with
# OpenMP's default busy waiting, processes sharing two cores slow each other down many times over.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest

from dualanodiff.data import write_synthetic


@pytest.fixture
def one_torch_thread():
    """Tiny networks run as fast on one thread, and much faster than two threads fighting over shared cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in synthetic data set (MVTec AD layout: objects `fabric` with hole/stain and `washer` with
    crack/rust; 60 normal train, 8 normal test and 12 anomaly images per type), written once per test session
    at 64x64 pixels with seed 0. Read-only: copy it before changing anything."""
    return write_synthetic(tmp_path_factory.mktemp("synthetic") / "data", seed=0, size=64)


# --- micro models: the real code paths on networks small enough for a 2-core CI machine ----------------------

MICRO_RESOLUTION = 16


def micro_architecture():
    from dualanodiff.model.tiny import TinyArchitecture

    return TinyArchitecture(space_to_depth=2, block_out_channels=(32, 32), attention_levels=1, heads=2,
                            norm_groups=8, text_width=32, text_layers=1)


def build_micro_base():
    """A fresh, untrained micro base model (16 px images, space-to-depth latents, a 0.4 M-parameter UNet);
    every call gives the same weights."""
    from dualanodiff.model.tiny import build_tiny_base

    return build_tiny_base(MICRO_RESOLUTION, seed=0, architecture=micro_architecture())


@pytest.fixture
def make_micro_base():
    return build_micro_base


@pytest.fixture
def micro_base():
    return build_micro_base()


@pytest.fixture(scope="session")
def micro_base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The micro base saved as a model folder, as `--base-model` takes it. Read-only."""
    return build_micro_base().save_pretrained(tmp_path_factory.mktemp("micro-base") / "base")
