"""BCM at generation: guidance 2.0 by default, the unconditional background and the background noise as options."""

import numpy as np
import pytest

from dualanodiff.generation import DualAnoDiffPipeline, GenerateSettings
from dualanodiff.model.config import DualConfig
from dualanodiff.training import Run, train
from helpers import micro_settings


@pytest.fixture(scope="module")
def bcm_run(synthetic_root, micro_base_dir, tmp_path_factory):
    return train(micro_settings(synthetic_root, micro_base_dir, steps=2, model=DualConfig(bcm=True)),
                 tmp_path_factory.mktemp("bcm") / "run")


def test_guidance_defaults_to_the_released_code_s_2_with_bcm_and_2_5_without():
    settings = GenerateSettings(num=1)
    assert settings.for_run(bcm=True, windowed=False).guidance == 2.0
    assert settings.for_run(bcm=False, windowed=False).guidance == 2.5
    assert GenerateSettings(num=1, guidance=3.0).for_run(bcm=True, windowed=False).guidance == 3.0
    assert GenerateSettings(num=1).recorded(True)["bcm"] == {"unconditional": "grey", "noise": "per_step"}


def test_the_background_options_change_the_samples_and_each_is_reproducible(bcm_run):
    pipe = DualAnoDiffPipeline.from_pretrained(bcm_run)
    images = {}
    for unconditional in ("grey", "black"):
        for noise in ("per_step", "fixed"):
            first, again = (pipe([0, 1], seed=4, steps=3, bcm_unconditional=unconditional, bcm_noise=noise,
                                 progress=False) for _ in range(2))
            assert all(np.array_equal(a, b) for a, b in zip(first.images, again.images, strict=True))
            images[unconditional, noise] = first.images[0]
    pairs = [(a, b) for a in images for b in images if a < b]
    assert all(not np.array_equal(images[a], images[b]) for a, b in pairs)
    alone = pipe([1], seed=4, steps=3, progress=False)  # a sample's background noise is its own, whatever the batch
    together = pipe([0, 1], seed=4, steps=3, progress=False)
    assert np.abs(alone.images[0].astype(int) - together.images[1].astype(int)).max() <= 1


def test_a_bcm_run_from_before_the_option_keeps_the_frozen_background_stream(bcm_run, tmp_path):
    import json
    import shutil

    old = tmp_path / "old"
    shutil.copytree(bcm_run.root, old)
    config = json.loads((old / "config.json").read_text())
    del config["model"]["background_lora"]
    (old / "config.json").write_text(json.dumps(config))
    assert Run.open(old).settings.model.background_lora == "frozen"
    assert bcm_run.settings.model.background_lora == "global"
