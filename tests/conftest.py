"""Fixtures shared by the whole test suite."""

from pathlib import Path

import pytest

from dualanodiff.data import write_synthetic


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in synthetic data set (MVTec AD layout: objects `fabric` with hole/stain and `washer` with
    crack/rust; 60 normal train, 8 normal test and 12 anomaly images per type), written once per test session
    at 64x64 pixels with seed 0. Read-only: copy it before changing anything."""
    return write_synthetic(tmp_path_factory.mktemp("synthetic") / "data", seed=0, size=64)

