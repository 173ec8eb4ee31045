"""Generated sets of the synthetic washer for the evaluation tests, and single-threaded torch."""

from pathlib import Path

import pytest

from dualanodiff.baselines import generate_baseline
from dualanodiff.data import load_source


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every evaluation test runs its tiny networks on one thread."""


@pytest.fixture(scope="session")
def washer_gens(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """GEN folders at 64 px: croppaste and perlin for washer/crack, croppaste for washer/rust (10 samples each)."""
    source = load_source(synthetic_root)
    out = tmp_path_factory.mktemp("gens")
    gens = {}
    for method, anomaly in (("croppaste", "crack"), ("perlin", "crack"), ("croppaste", "rust")):
        gens[f"{method}-{anomaly}"] = generate_baseline(method, source, "washer", anomaly, 10,
                                                        out / f"{method}-{anomaly}", resolution=64).root
    return gens
