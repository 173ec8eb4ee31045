"""The public API as the README shows it: train, generate and evaluate from Python, with settings objects."""

import dualanodiff
from dualanodiff import (
    GenerateSettings,
    LocalizationSettings,
    TrainSettings,
    evaluate_localization,
    generate,
    load_source,
    train,
)


def test_the_readme_example_runs_end_to_end(synthetic_root, micro_base_dir, tmp_path, one_torch_thread):
    settings = TrainSettings(data_root=str(synthetic_root), object="washer", anomaly="rust",
                             base_model=str(micro_base_dir), resolution=32, steps=2, batch_size=2)
    run = train(settings, tmp_path / "run")
    generated = generate(run, tmp_path / "gen", GenerateSettings(num=4, steps=2))
    metrics = evaluate_localization(load_source(synthetic_root), [generated.root], tmp_path / "eval",
                                    settings=LocalizationSettings(epochs=1, resolution=32, base_width=2))
    assert metrics["methods"] == ["dualanodiff"] and 0 <= metrics["pixel_auroc"] <= 1
    assert set(metrics["per_type"]) == {"rust"}


def test_every_exported_name_resolves():
    for name in dualanodiff.__all__:
        assert getattr(dualanodiff, name) is not None
