"""The CLI builds each stage's settings object: every field is settable, defaults agree with the dataclasses, and the
help states the presets' real defaults."""

from dataclasses import MISSING, fields

import pytest
import typer

from dualanodiff.cli import app
from dualanodiff.cli.evaluate import localization_settings
from dualanodiff.cli.model import generate_settings, train_settings
from dualanodiff.evaluate.settings import LocalizationSettings
from dualanodiff.generation.settings import GenerateSettings
from dualanodiff.model.config import DualConfig
from dualanodiff.training.settings import PRESETS, TrainSettings

COMMANDS = typer.main.get_command(app).commands
RENAMED = {"object": "object_", "compile": "compile_", "data_root": "data", "model": None}


def _params(words: tuple[str, ...]) -> dict:
    command = COMMANDS[words[0]]
    for word in words[1:]:
        command = command.commands[word]
    return {param.name: param for param in command.params}


@pytest.mark.parametrize(("settings_class", "words"), [
    (TrainSettings, ("train",)), (DualConfig, ("train",)), (GenerateSettings, ("generate",)),
    (LocalizationSettings, ("evaluate", "localization")),
])
def test_every_setting_has_an_option_whose_default_is_the_dataclass_default(settings_class, words):
    params = _params(words)
    for field in fields(settings_class):
        name = RENAMED.get(field.name, field.name)
        if name is None:
            continue
        assert name in params, f"{field.name} of {settings_class.__name__} cannot be set from `{' '.join(words)}`"
        default = field.default if field.default is not MISSING else None
        cli_default = params[name].default
        if field.name == "rank":
            default = None  # None on the command line: DualConfig's own default
        assert cli_default == default, field.name


def test_the_commands_build_the_settings_they_are_given():
    context = COMMANDS["train"].make_context("train", [
        "--data", "d", "--object", "o", "--anomaly", "a", "--out", "r", "--steps", "7", "--rank", "8",
        "--lora-alpha", "4", "--no-saim", "--bcm", "--base-lr", "1e-4", "--keep-checkpoints", "3"])
    settings = train_settings(context.params)
    assert (settings.data_root, settings.object, settings.steps, settings.base_lr) == ("d", "o", 7, 1e-4)
    assert settings.keep_checkpoints == 3 and settings.resolution is None  # the preset's, filled by train()
    assert settings.model == DualConfig(rank=8, lora_alpha=4.0, saim=False, bcm=True)
    generated = COMMANDS["generate"].make_context("generate", ["r", "--num", "3", "--out", "g", "--guidance", "2"])
    assert generate_settings(generated.params) == GenerateSettings(num=3, guidance=2.0)
    local = COMMANDS["evaluate"].commands["localization"].make_context("localization", [
        "--data", "d", "--generated", "g", "--out", "e", "--epochs", "3"])
    assert localization_settings(local.params) == LocalizationSettings(epochs=3)


def test_the_help_states_each_preset_default():
    for name in ("steps", "lr", "resolution", "base_steps", "lr_schedule"):
        text = _params(("train",))[name].help
        for preset, values in PRESETS.items():
            if name in values:
                assert f"{preset}: {values[name]}" in text, (name, text)
