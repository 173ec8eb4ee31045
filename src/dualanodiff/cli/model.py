"""`dualanodiff train`, `generate` and `demo`: the model's commands.

Each command builds its stage's settings object from its options (`train_settings`, `generate_settings`: the sweep
builds every job's settings with the same functions) and calls the Python API; `--config CALL.json` runs a stage
call that a sweep job stored (see `dualanodiff.stages`) instead.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import typer

from dualanodiff.cli.app import app
from dualanodiff.errors import UserError
from dualanodiff.training.settings import PRESETS, preset_defaults_text

PRESET_HELP = f"{' or '.join(PRESETS)}: tiny (CPU, its own small base) or sd15 (Stable Diffusion 1.x/2.x weights)."
CONFIG_HELP = "Run the stage call stored in this file (a sweep job's status file, or a call written by hand)."
# Parameter names of the commands that are not their settings' field names.
_RENAMED = {"object_": "object", "compile_": "compile", "data": "data_root"}


def _preset_help(text: str, name: str) -> str:
    return f"{text} (default per preset: {preset_defaults_text(name)})."


def _values(params: dict[str, Any], settings_class: type) -> dict[str, Any]:
    """The parameters named like `settings_class`'s fields (None: the field's default), as strings for paths."""
    renamed = {_RENAMED.get(name, name): value for name, value in params.items()}
    names = {field.name for field in fields(settings_class)}
    return {name: str(value) if isinstance(value, Path) else value
            for name, value in renamed.items() if name in names and value is not None}


def train_settings(params: dict[str, Any]):  # -> TrainSettings (imported lazily: the CLI starts without torch)
    """The TrainSettings of `dualanodiff train`'s parameters (validated; preset defaults are filled by `train`)."""
    from dualanodiff.model.config import DualConfig
    from dualanodiff.training.settings import TrainSettings

    missing = [f"--{name.rstrip('_')}" for name in ("data", "object_", "anomaly") if params.get(name) is None]
    if missing:
        raise UserError(f"train: missing option(s) {', '.join(missing)} (or --config FILE)")
    model = DualConfig(**_values(params, DualConfig))
    return TrainSettings(**{**_values(params, TrainSettings), "model": model}).validate()


def generate_settings(params: dict[str, Any]):  # -> GenerateSettings
    from dualanodiff.generation.settings import GenerateSettings

    return GenerateSettings(**_values(params, GenerateSettings)).validate()


def _missing(command: str, **options: Any) -> None:
    absent = [f"--{name.replace('_', '-')}" for name, value in options.items() if value is None]
    if absent:
        raise UserError(f"{command}: missing option(s) {', '.join(absent)} (or --config FILE)")


@app.command("train")
def train_command(
    data: Path | None = typer.Option(None, "--data", metavar="ROOT", help="The data set's folder."),
    object_: str | None = typer.Option(None, "--object", metavar="OBJ", help="The object (MVTec AD category)."),
    anomaly: str | None = typer.Option(None, "--anomaly", metavar="TYPE", help="The anomaly type to learn."),
    out: Path | None = typer.Option(None, "--out", metavar="RUN", help="The run folder to write."),
    layout: Path | None = typer.Option(None, "--layout", metavar="FILE", help="JSON layout of a custom data set."),
    preset: str = typer.Option("tiny", "--preset", help=PRESET_HELP),
    base_model: str | None = typer.Option(None, "--base-model", metavar="ID_OR_PATH",
                                          help="sd15: a diffusers folder or hub id; tiny: a tiny base folder."),
    steps: int | None = typer.Option(None, "--steps", metavar="N", help=_preset_help("Optimizer steps", "steps")),
    batch_size: int | None = typer.Option(None, "--batch-size", metavar="B",
                                          help=_preset_help("Image pairs per step", "batch_size")),
    gradient_accumulation: int = typer.Option(1, "--gradient-accumulation", metavar="K"),
    lr: float | None = typer.Option(None, "--lr", help=_preset_help("Learning rate", "lr")),
    lr_schedule: str | None = typer.Option(None, "--lr-schedule",
                                           help=_preset_help("constant or cosine (warm-up, then decay)",
                                                             "lr_schedule")),
    rank: int | None = typer.Option(None, "--rank", metavar="R", help="LoRA rank of each branch (default: 32)."),
    lora_alpha: float | None = typer.Option(None, "--lora-alpha", metavar="A",
                                            help="LoRA alpha (default: the rank, a scale of 1)."),
    resolution: int | None = typer.Option(None, "--resolution", metavar="PX",
                                          help=_preset_help("Training image side", "resolution")),
    seed: int | None = typer.Option(None, "--seed", metavar="S", help=_preset_help("Seed", "seed")),
    mixed_precision: str | None = typer.Option(None, "--mixed-precision",
                                               help=_preset_help("auto, no, fp16 or bf16", "mixed_precision")),
    checkpoint_every: int | None = typer.Option(None, "--checkpoint-every", metavar="K",
                                                help=_preset_help("Steps between checkpoints", "checkpoint_every")),
    keep_checkpoints: int = typer.Option(2, "--keep-checkpoints", metavar="K", help="Checkpoints kept."),
    gradient_checkpointing: bool = typer.Option(False, "--gradient-checkpointing"),
    ema_decay: float | None = typer.Option(None, "--ema-decay", metavar="D",
                                           help="Keep a moving average of the adapters (default: off)."),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the UNet (first step compiles, slowly)."),
    flip_horizontal: bool | None = typer.Option(None, "--flip-horizontal/--no-flip-horizontal"),
    flip_vertical: bool | None = typer.Option(None, "--flip-vertical/--no-flip-vertical"),
    train_count: int | None = typer.Option(None, "--train-count", metavar="K",
                                           help="Train on the first K images (default: the first ceil(n/3))."),
    base_steps: int | None = typer.Option(None, "--base-steps", metavar="N",
                                          help=_preset_help("tiny: pre-training steps of its base", "base_steps")),
    base_batch_size: int | None = typer.Option(None, "--base-batch-size", metavar="B",
                                               help=_preset_help("tiny: pre-training batch", "base_batch_size")),
    base_lr: float | None = typer.Option(None, "--base-lr", metavar="LR",
                                         help=_preset_help("tiny: pre-training learning rate", "base_lr")),
    saim: bool = typer.Option(True, "--saim/--no-saim", help="The interaction module (off: ablation)."),
    saim_init: str = typer.Option("zero", "--saim-init", help="zero (step 0 = base) or default (released)."),
    text_encoder_lora: bool = typer.Option(True, "--text-encoder-lora/--no-text-encoder-lora"),
    object_token: str = typer.Option("vfx", "--object-token", help="Global prompt: 'a OBJ with ANOMALY'."),
    anomaly_token: str = typer.Option("sks", "--anomaly-token", help="Anomaly branch prompt."),
    bcm: bool = typer.Option(False, "--bcm", help="Background compensation (objects on a background)."),
    bcm_form: str = typer.Option("additive", "--bcm-form", help="additive (paper) or gated (released code)."),
    object_masks: Path | None = typer.Option(None, "--object-masks", metavar="DIR",
                                             help="BCM: object masks made with any tool, DIR/<stem>.png."),
    object_segmenter: str = typer.Option("border", "--object-segmenter",
                                         help="BCM: border (weight-free) or module.path:factory."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the run's latest checkpoint."),
    config: Path | None = typer.Option(None, "--config", metavar="CALL.json", help=CONFIG_HELP),
) -> None:
    """Train one DualAnoDiff model for one (object, anomaly type).

    \b
    Every default (per preset) is printed at the start and stored in RUN/config.json; RUN also gets
    split.json, weights.safetensors, loss.csv/loss.png and checkpoints for --resume.

    \b
    Example: dualanodiff train --data mvtec_ad --object bottle --anomaly broken_large --out runs/bottle-bl \\
             --preset sd15 --base-model stable-diffusion-v1-5/stable-diffusion-v1-5 --bcm
    Example: dualanodiff train --data synthetic --object washer --anomaly rust --out runs/washer-rust
    """
    from dualanodiff.stages import read_call, run_call
    from dualanodiff.training.finetune import train

    if config is not None:
        run_call(read_call(config, "train"))
        return
    settings = train_settings(locals())
    _missing("train", out=out)
    train(settings, out, resume=resume)


@app.command("generate")
def generate_command(
    run: Path | None = typer.Argument(None, help="A training run folder."),
    num: int | None = typer.Option(None, "--num", metavar="N", help="How many triplets (the paper makes 1000)."),
    out: Path | None = typer.Option(None, "--out", metavar="GEN", help="The folder to write (resumable)."),
    steps: int = typer.Option(50, "--steps", metavar="K", help="Denoising steps."),
    guidance: float = typer.Option(2.5, "--guidance", metavar="G", help="Classifier-free guidance scale."),
    batch_size: int = typer.Option(8, "--batch-size", metavar="B", help="Pairs per denoising pass."),
    seed: int = typer.Option(0, "--seed", metavar="S", help="Sample i depends on (seed, i) only."),
    mask_method: str = typer.Option("threshold", "--mask-method",
                                    help="threshold (on the anomaly part), attention, or module.path:factory."),
    scheduler: str = typer.Option("ddim", "--scheduler", help="ddim, dpm or pndm."),
    background_every: int = typer.Option(50, "--background-every", metavar="K",
                                         help="BCM: change the background every K samples."),
    backgrounds: Path | None = typer.Option(None, "--backgrounds", metavar="RUN",
                                            help="Measure background preservation against a BCM run's backgrounds."),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda, cuda:1 ... (default: cuda if present)."),
    export_mvtec: Path | None = typer.Option(None, "--export-mvtec", metavar="ROOT",
                                             help="Also write the pairs in MVTec AD layout under ROOT."),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the UNet (first batch compiles, slowly)."),
    config: Path | None = typer.Option(None, "--config", metavar="CALL.json", help=CONFIG_HELP),
) -> None:
    """Generate anomaly image / anomaly part / mask triplets from a trained run.

    \b
    GEN gets image/NNNN.png, fg/NNNN.png, mask/NNNN.png and meta.json (settings, per-sample seed, mask
    area, branch agreement, background). An interrupted job continues where it stopped; under
    `accelerate launch`, each process makes its share of the samples and the files are the same.

    \b
    Example: dualanodiff generate runs/washer-rust --num 1000 --out gen/washer-rust --export-mvtec aug_mvtec
    """
    from dualanodiff.generation.job import generate
    from dualanodiff.stages import process_share, read_call, run_call

    if config is not None:
        generated = run_call(read_call(config, "generate"))
    else:
        _missing("generate", run=run, num=num, out=out)
        generated = generate(run, out, generate_settings(locals()), **process_share())
    summary = generated.meta.get("summary", {})
    if summary:
        print(" ".join(f"{key}={value:.4f}" if isinstance(value, float) else f"{key}={value}"
                       for key, value in summary.items()))
    else:
        share = process_share()
        print(f"process {share['process_index']} of {share['num_processes']} made its share; "
              f"{len(generated.completed_indices())} samples are done (the process that completes the set writes "
              "the summary)")
    print(f"generated: {generated.root}")


@app.command("demo")
def demo_command(
    out: Path = typer.Option(Path("dualanodiff-demo"), "--out", metavar="DIR", help="Where to write everything."),
    steps: int | None = typer.Option(None, "--steps", metavar="N",
                                     help="Dual-branch training steps (default: the tiny preset's)."),
    num: int = typer.Option(16, "--num", metavar="N", help="Triplets to generate."),
    generation_steps: int = typer.Option(50, "--generation-steps", metavar="K"),
    seed: int = typer.Option(32, "--seed", metavar="S", help="Training and generation seed."),
) -> None:
    """Run the whole job offline on the CPU: synthetic data, tiny training with BCM, generation, contact sheet.

    \b
    Writes DIR/data (synthetic set), DIR/run (training run), DIR/generated (triplets) and
    DIR/contact_sheet.png (image | anomaly part | mask overlay). Minutes on a laptop.

    \b
    Example: dualanodiff demo --out demo
    """
    from dualanodiff.demo import DemoSettings, run_demo

    result = run_demo(out, DemoSettings(steps=steps, num=num, generation_steps=generation_steps, seed=seed))
    print("wall time: " + ", ".join(f"{stage} {seconds:.0f} s" for stage, seconds in result.seconds.items())
          + f"; total {sum(result.seconds.values()) / 60:.1f} min")
    for name, path in result.paths.items():
        print(f"{name}: {path}")
