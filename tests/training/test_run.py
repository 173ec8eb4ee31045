"""The RUN folder through its owner: recognised, created, resumed, opened from anywhere, refused when unfinished."""

import json

import pytest

from dualanodiff.errors import ModelError, UserError
from dualanodiff.generation import GenerateSettings, generate
from dualanodiff.training import Run, TrainSettings, train
from helpers import micro_settings


def test_a_run_is_written_and_read_through_run(synthetic_root, micro_base_dir, tmp_path, monkeypatch):
    run = train(micro_settings(synthetic_root, micro_base_dir, steps=1, checkpoint_every=1), tmp_path / "run")
    assert Run.is_run(run.root) and run.is_complete()
    opened = Run.open(tmp_path / "run")
    assert opened.settings == run.settings and opened.base_model == run.tiny_base_dir
    assert opened.split()["train_count"] == 4
    config = json.loads(run.config_path.read_text())
    assert config["format"] == "dualanodiff-run/1" and config["base_model_path"] == "base"
    monkeypatch.chdir(tmp_path / "run")  # a run is read from any working folder
    generated = generate("../run", tmp_path / "gen", GenerateSettings(num=1, steps=1, device="cpu"))
    assert generated.meta["run"] == str(run.root)


def test_an_unfinished_run_is_refused_by_generation(synthetic_root, micro_base_dir, tmp_path):
    run = train(micro_settings(synthetic_root, micro_base_dir, steps=1, checkpoint_every=1), tmp_path / "run")
    run.weights_path.unlink()
    assert not Run.open(run.root).is_complete()
    with pytest.raises(ModelError, match="training has not finished"):
        generate(run.root, tmp_path / "gen", GenerateSettings(num=1, steps=1))


def test_opening_refuses_what_is_not_a_run(tmp_path):
    with pytest.raises(UserError, match="not a training run folder"):
        Run.open(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps([1, 2]))
    with pytest.raises(UserError, match=r"config\.json: not a run's config"):
        Run.open(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"format": "dualanodiff-run/1", "resolution": "big"}))
    with pytest.raises(UserError, match=r"config\.json: has no data_root, object"):
        Run.open(tmp_path)
    assert not Run.is_run(tmp_path / "nowhere")


def test_a_config_with_a_bad_value_or_a_deleted_key_is_refused(synthetic_root, micro_base_dir, tmp_path):
    run = train(micro_settings(synthetic_root, micro_base_dir, steps=1, checkpoint_every=1), tmp_path / "run")
    config = json.loads(run.config_path.read_text())
    for change, message in (({"resolution": "big"}, "resolution must be an integer"),
                            ({"model": {**config["model"], "saim": "yes"}}, "saim must be true or false"),
                            ({"preset": "huge"}, "--preset must be one of")):
        run.config_path.write_text(json.dumps({**config, **change}))
        with pytest.raises(UserError, match=message):
            Run.open(run.root)
    run.config_path.write_text(json.dumps({key: value for key, value in config.items() if key != "model"}))
    with pytest.raises(UserError, match="has no model"):
        Run.open(run.root)


def test_create_protects_a_finished_run_and_resume_checks_the_settings(tmp_path):
    settings = TrainSettings(data_root="d", object="o", anomaly="a").resolved()
    run = Run.create(tmp_path / "run", settings)
    run.write_config("base")
    with pytest.raises(UserError, match="pass --resume"):
        Run.create(tmp_path / "run", settings)
    assert Run.create(tmp_path / "run", settings, resume=True).settings == settings
    with pytest.raises(UserError, match=r"other settings than the run was started with \(steps\)"):
        Run.create(tmp_path / "run", TrainSettings(data_root="d", object="o", anomaly="a", steps=3).resolved(),
                   resume=True)
