"""DualAnoDiff: few-shot anomaly image and mask generation with a dual-interrelated diffusion model.

The stages a reader follows, data -> model -> train -> generate -> masks -> evaluate -> report, each with its
settings as data:

    from dualanodiff import GenerateSettings, LocalizationSettings, TrainSettings, evaluate_localization
    from dualanodiff import generate, load_source, train

    run = train(TrainSettings(data_root="mvtec", object="bottle", anomaly="broken_large"), "runs/bottle-bl")
    generated = generate(run, "gen/bottle-bl", GenerateSettings(num=1000))
    metrics = evaluate_localization(load_source("mvtec"), [generated.root], "eval/bottle",
                                    settings=LocalizationSettings(seeds=3))

Names are imported on first use, so `import dualanodiff` is instant and the command line starts without torch.
"""

from dualanodiff.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    # data
    "DataSource": "dualanodiff.data.source",
    "load_source": "dualanodiff.data.source",
    "write_synthetic": "dualanodiff.data.synthetic",
    # model
    "DualConfig": "dualanodiff.model.config",
    "DualAnoDiffModel": "dualanodiff.model.dual",
    "load_base_model": "dualanodiff.model.base",
    # train
    "PRESETS": "dualanodiff.training.settings",
    "TrainSettings": "dualanodiff.training.settings",
    "TinyBaseSettings": "dualanodiff.training.settings",
    "Run": "dualanodiff.training.run",
    "train": "dualanodiff.training.finetune",
    # generate
    "GenerateSettings": "dualanodiff.generation.settings",
    "DualAnoDiffPipeline": "dualanodiff.generation.pipeline",
    "GeneratedSet": "dualanodiff.generation.generated_set",
    "generate": "dualanodiff.generation.job",
    "generate_baseline": "dualanodiff.baselines",
    # masks
    "load_segmenter": "dualanodiff.masks.anomaly",
    # evaluate
    "LocalizationSettings": "dualanodiff.evaluate.settings",
    "evaluate_localization": "dualanodiff.evaluate.localization",
    "evaluate_classification": "dualanodiff.evaluate.classification",
    "evaluate_quality": "dualanodiff.evaluate.quality",
    # report and sweep
    "write_report": "dualanodiff.report.build",
    "SweepSettings": "dualanodiff.sweep.settings",
    "run_sweep": "dualanodiff.sweep.run",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = ["__version__", *_EXPORTS]
