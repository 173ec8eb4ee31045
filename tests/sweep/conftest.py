"""Fixtures of the sweep's tests."""

from collections import Counter

import pytest


@pytest.fixture
def training_calls(monkeypatch):
    """Counts `train` calls per anomaly type; `failures[type]` lists exceptions to raise, one per call, first."""
    import dualanodiff.training

    real_train = dualanodiff.training.train
    calls: Counter = Counter()
    failures: dict[str, list[BaseException]] = {}

    def counted_train(settings, run_dir, *, resume=False):
        calls[settings.anomaly] += 1
        if failures.get(settings.anomaly):
            raise failures[settings.anomaly].pop(0)
        return real_train(settings, run_dir, resume=resume)

    monkeypatch.setattr(dualanodiff.training, "train", counted_train)
    return calls, failures
