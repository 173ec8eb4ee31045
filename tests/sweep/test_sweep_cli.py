"""`dualanodiff sweep` on the command line: the stages' options become the stages' settings objects."""

import pytest
from sweep_helpers import run_cli

import dualanodiff.sweep.run
from dualanodiff.sweep import SweepOutcome


@pytest.fixture
def swept(monkeypatch, tmp_path):
    """The SweepSettings the command hands to `run_sweep` (which does nothing here)."""
    seen = []

    def fake_run_sweep(settings, *, backend="local", address=None):
        seen.append((settings, backend, address))
        return SweepOutcome(0, 0, 0, {}, {}, 0.0, tmp_path / "results.csv", tmp_path / "results.md", None)

    monkeypatch.setattr(dualanodiff.sweep.run, "run_sweep", fake_run_sweep)
    return seen


def test_the_sweep_builds_each_stages_settings_from_that_stages_options(swept, capsys):
    assert run_cli("sweep", "--data", "d", "--out", "o", "--steps", "7", "--generation-steps", "3",
                   "--eval-epochs", "2") == 0
    (settings, backend, address), = swept
    assert (settings.train.steps, settings.generate.steps, settings.localization.epochs) == (7, 3, 2)
    assert (backend, address, settings.num, settings.generate.num) == ("local", None, 1000, 1000)

    swept.clear()
    assert run_cli("sweep", "--data", "d", "--out", "o", "--objects", "washer, fabric", "--anomalies", "rust",
                   "--num", "4", "--resolution", "48", "--lr", "5e-06", "--no-flip-vertical", "--bcm", "--no-saim",
                   "--rank", "8", "--preset", "sd15", "--base-model", "b", "--generation-seed", "5",
                   "--guidance", "2.0", "--device", "cpu", "--generation-compile", "--eval-resolution", "64",
                   "--eval-device", "cpu", "--gpus-per-job", "2", "--retries", "0", "--backend", "ray",
                   "--address", "auto") == 0
    (settings, backend, address), = swept
    train, generate, localization = settings.train, settings.generate, settings.localization
    assert (train.resolution, train.lr, train.preset, train.base_model) == (48, 5e-6, "sd15", "b")
    assert train.flip_vertical is False and train.flip_horizontal is None  # None: the command's own default
    assert (train.model.bcm, train.model.saim, train.model.rank) == (True, False, 8)
    assert train.compile is False and generate.compile is True  # --compile is train's, --generation-compile not
    assert (generate.seed, generate.guidance, generate.device, generate.num) == (5, 2.0, "cpu", 4)
    assert generate.batch_size == 8  # generate's own default, not train's --batch-size
    assert (localization.resolution, localization.epochs, localization.seeds) == (64, 20, 1)
    assert settings.localization_device == "cpu"
    assert (settings.objects, settings.anomalies, settings.gpus_per_job, settings.retries) == \
        (("washer", "fabric"), ("rust",), 2, 0)
    assert (backend, address) == ("ray", "auto")


def test_the_sweeps_help_lists_the_options_it_takes_from_the_other_commands(capsys):
    assert run_cli("sweep", "--help") == 0
    text = capsys.readouterr().out
    for option in ("--retries", "--steps", "--no-flip-vertical", "--bcm", "--generation-steps", "--guidance",
                   "--generation-batch-size", "--generation-seed", "--eval-epochs", "--eval-device"):
        assert f"{option} " in text or f"{option}\n" in text
    assert "[generate --steps] Denoising steps." in text and "[train] Optimizer steps" in text


def test_bad_values_are_one_line_naming_the_option(swept, capsys):
    assert run_cli("sweep", "--data", "d", "--out", "o", "--num", "0") == 2
    assert capsys.readouterr().err == "error: --num must be at least 1, got 0\n"
    assert run_cli("sweep", "--data", "d", "--out", "o", "--eval-resolution", "40") == 2
    assert "error: --eval-resolution 40: must be a positive multiple of 32" in capsys.readouterr().err
    assert run_cli("sweep", "--data", "d", "--out", "o", "--generation-steps", "0") == 2
    assert capsys.readouterr().err == "error: --generation-steps must be at least 1, got 0\n"
    assert run_cli("sweep", "--data", "d", "--out", "o", "--steps", "0") == 2
    assert capsys.readouterr().err == "error: --steps must be at least 1, got 0\n"
    assert run_cli("sweep", "--data", "d", "--out", "o", "--no-such-option") == 2
    assert not swept
