"""Settings as data: every stage's dataclass round-trips through JSON, checks types and ranges in one place, and
refuses a bad value in one line naming the option."""

import json
import math

import pytest

from dualanodiff.errors import UserError
from dualanodiff.evaluate.settings import LocalizationSettings
from dualanodiff.generation.settings import GenerateSettings
from dualanodiff.model.config import DualConfig
from dualanodiff.training.settings import PRESETS, TinyBaseSettings, TrainSettings

STAGES = [TrainSettings(data_root="d", object="o", anomaly="a"), TinyBaseSettings(), GenerateSettings(num=4),
          LocalizationSettings(), DualConfig()]


@pytest.mark.parametrize("settings", STAGES, ids=lambda s: type(s).__name__)
def test_every_stage_round_trips_through_json(settings):
    text = json.dumps(settings.to_dict())
    assert type(settings).from_dict(json.loads(text)) == settings


@pytest.mark.parametrize(("settings", "message"), [
    (GenerateSettings(num=0), "--num must be at least 1, got 0"),
    (GenerateSettings(num=4, guidance=math.nan), "--guidance must be a finite number"),
    (GenerateSettings(num=4, guidance=math.inf), "--guidance must be a finite number"),
    (GenerateSettings(num=4, steps=0), "--steps must be at least 1"),
    (GenerateSettings(num=4, scheduler="euler"), "--scheduler must be one of ddim, dpm, pndm"),
    (TrainSettings(data_root="d", object="o", anomaly="a", ema_decay=2), "--ema-decay must be at most"),
    (TrainSettings(data_root="d", object="o", anomaly="a", lr=0), "--lr must be above 0"),
    (TrainSettings(data_root="d", object="o", anomaly="a", preset="huge"), "--preset must be one of sd15, tiny"),
    (TrainSettings(data_root="d", object="o", anomaly="a", model=DualConfig(rank=-4)), "--rank must be at least 1"),
    (LocalizationSettings(resolution=48), "multiple of 32"),
])
def test_bad_values_are_one_line_errors_naming_the_option(settings, message):
    with pytest.raises(UserError, match=message) as error:
        settings.validate()
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(("data", "message"), [
    ([1, 2], "expected a JSON object of TrainSettings values, got list"),
    ({}, "missing TrainSettings key"),
    ({"data_root": "d", "object": "o", "anomaly": "a", "resolution": "big"}, "resolution must be an integer or null"),
    ({"data_root": "d", "object": "o", "anomaly": "a", "model": {"saim": "yes"}}, "saim must be true or false"),
    ({"data_root": "d", "object": "o", "anomaly": "a", "steps": True}, "steps must be an integer"),
    ({"data_root": "d", "object": "o", "anomaly": "a", "colour": "red"}, "unknown TrainSettings key"),
    ({"data_root": "d", "object": "o", "anomaly": "a", "model": {"rank": -4}}, "--rank must be at least 1"),
])
def test_stored_settings_are_checked_on_load(data, message):
    with pytest.raises(UserError, match=message) as error:
        TrainSettings.from_dict(data, where="RUN/config.json")
    assert str(error.value).startswith(("RUN/config.json", "--rank"))


def test_presets_are_resolved_once_and_a_local_base_folder_becomes_absolute(tmp_path, monkeypatch):
    (tmp_path / "base").mkdir()
    monkeypatch.chdir(tmp_path)
    settings = TrainSettings(data_root="data", object="cable", anomaly="a", base_model="base", steps=9).resolved()
    assert settings.steps == 9 and settings.lr == PRESETS["tiny"]["lr"] and settings.base_steps == 2000
    assert settings.base_model == str(tmp_path / "base") and settings.data_root == str(tmp_path / "data")
    assert settings.flip_horizontal is False  # cable's two sides differ
    hub = TrainSettings(data_root="d", object="o", anomaly="a", preset="sd15").resolved()
    assert hub.base_model == PRESETS["sd15"]["base_model"]  # a hub id stays as it is
    assert settings.tiny_base().to_dict() == {"resolution": 64, "steps": 2000, "batch_size": 16, "lr": 5e-4,
                                              "seed": 32, "prompt": "a vfx", "flip_horizontal": False,
                                              "flip_vertical": False, "working_resolution": 256}
    assert settings.canvas == "window" and settings.working_side == 256 and hub.canvas == "image"


def test_the_scheduler_choices_are_the_pipeline_s_schedulers():
    from dualanodiff.generation.pipeline import SCHEDULERS
    from dualanodiff.generation.settings import SCHEDULER_NAMES

    assert tuple(SCHEDULERS) == SCHEDULER_NAMES  # the settings name them without importing diffusers
