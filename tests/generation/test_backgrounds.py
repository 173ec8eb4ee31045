"""The background bank a BCM run's generation conditions on."""

import numpy as np
import pytest

from dualanodiff.errors import UserError
from dualanodiff.generation.backgrounds import BackgroundBank
from dualanodiff.training import Run, TrainSettings


def test_background_bank_switches_every_k_samples(tmp_path):
    run = Run(tmp_path, TrainSettings(data_root="data", object="washer", anomaly="rust"))
    for name in ("a", "b", "c"):
        run.save_background(name, np.full((8, 8, 3), 50, np.uint8))
        run.save_object_mask("normal", name, np.zeros((8, 8), bool))
    bank = BackgroundBank(run)
    chosen = [bank.choose(i, seed=0, every=5) for i in range(20)]
    assert all(chosen[i] == chosen[i - i % 5] for i in range(20))
    assert len({path.stem for path in chosen}) > 1
    pixels, names = bank.for_samples([0, 7], seed=0, every=5)
    assert pixels.shape == (2, 3, 8, 8) and names == [chosen[0].stem, chosen[7].stem]
    assert bank.preservation(np.full((8, 8, 3), 50, np.uint8), "a") == 0.0
    assert bank.preservation(np.full((8, 8, 3), 101, np.uint8), "a") == pytest.approx(51 / 255)


def test_a_run_without_backgrounds_is_refused(tmp_path):
    with pytest.raises(UserError, match="no background images; retrain with --bcm"):
        BackgroundBank(Run(tmp_path, TrainSettings(data_root="data", object="washer", anomaly="rust")))
