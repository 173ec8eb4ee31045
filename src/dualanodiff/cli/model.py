"""`dualanodiff train`, `generate` and `demo`: the model's commands.

Each command builds its stage's settings object from its options (`train_settings`, `generate_settings`: the sweep
builds every job's settings with the same functions) and calls the Python API; `--config CALL.json` runs a stage
call that a sweep job stored (see `dualanodiff.stages`) instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from dualanodiff.cli.app import app, require_options, settings_values
from dualanodiff.generation.settings import (
    WINDOW_COLOURS,
    WINDOW_ORIENTATIONS,
    WINDOW_POSITION_WIDTH,
    WINDOW_SIZE_SPREAD,
    WINDOW_STRENGTH,
    WINDOW_TURNS,
)
from dualanodiff.training.settings import preset_defaults_text

PRESET_HELP = "tiny (CPU, its own small base) or sd15 (Stable Diffusion 1.x/2.x weights)."
CONFIG_HELP = "Run the stage call stored in this file (a sweep job's status file, or a call written by hand)."
def _preset_help(text: str, name: str) -> str:
    return f"{text} (default per preset: {preset_defaults_text(name)})."


def train_settings(params: dict[str, Any]):  # -> TrainSettings (imported lazily: the CLI starts without torch)
    """The TrainSettings of `dualanodiff train`'s parameters (validated; preset defaults are filled by `train`)."""
    from dualanodiff.model.config import DualConfig
    from dualanodiff.training.settings import TrainSettings

    require_options("train", data=params.get("data"), object_=params.get("object_"), anomaly=params.get("anomaly"))
    model = DualConfig(**settings_values(params, DualConfig))
    return TrainSettings(**{**settings_values(params, TrainSettings), "model": model}).validate()


def generate_settings(params: dict[str, Any]):  # -> GenerateSettings
    from dualanodiff.generation.settings import GenerateSettings

    return GenerateSettings(**settings_values(params, GenerateSettings)).validate()


# train's options, one constant each so that the command reads in one screen.
_TRAIN_DATA = typer.Option(None, "--data", metavar="ROOT", help="The data set's folder.")
_TRAIN_OBJECT = typer.Option(None, "--object", metavar="OBJ", help="The object (MVTec AD category).")
_TRAIN_ANOMALY = typer.Option(None, "--anomaly", metavar="TYPE", help="The anomaly type to learn.")
_TRAIN_OUT = typer.Option(None, "--out", metavar="RUN", help="The run folder to write.")
_TRAIN_LAYOUT = typer.Option(None, "--layout", metavar="FILE", help="JSON layout of a custom data set.")
_TRAIN_PRESET = typer.Option("tiny", "--preset", help=PRESET_HELP)
_TRAIN_BASE_MODEL = typer.Option(None, "--base-model", metavar="ID_OR_PATH",
                                 help="sd15: a diffusers folder or hub id; tiny: a tiny base folder.")
_TRAIN_STEPS = typer.Option(None, "--steps", metavar="N", help=_preset_help("Optimizer steps", "steps"))
_TRAIN_BATCH_SIZE = typer.Option(None, "--batch-size", metavar="B",
                                 help=_preset_help("Image pairs per step", "batch_size"))
_TRAIN_GRADIENT_ACCUMULATION = typer.Option(1, "--gradient-accumulation", metavar="K")
_TRAIN_LR = typer.Option(None, "--lr", help=_preset_help("Learning rate", "lr"))
_TRAIN_LR_SCHEDULE = typer.Option(None, "--lr-schedule",
                                  help=_preset_help("constant or cosine (warm-up, then decay)", "lr_schedule"))
_TRAIN_RANK = typer.Option(None, "--rank", metavar="R", help="LoRA rank of each branch (default: 32).")
_TRAIN_LORA_ALPHA = typer.Option(None, "--lora-alpha", metavar="A",
                                 help="LoRA alpha (default: the rank, a scale of 1).")
_TRAIN_RESOLUTION = typer.Option(None, "--resolution", metavar="PX",
                                 help=_preset_help("Training image side", "resolution"))
_TRAIN_SEED = typer.Option(None, "--seed", metavar="S", help=_preset_help("Seed", "seed"))
_TRAIN_MIXED_PRECISION = typer.Option(None, "--mixed-precision",
                                      help=_preset_help("auto, no, fp16 or bf16", "mixed_precision"))
_TRAIN_CHECKPOINT_EVERY = typer.Option(None, "--checkpoint-every", metavar="K",
                                       help=_preset_help("Steps between checkpoints", "checkpoint_every"))
_TRAIN_KEEP_CHECKPOINTS = typer.Option(2, "--keep-checkpoints", metavar="K", help="Checkpoints kept.")
_TRAIN_GRADIENT_CHECKPOINTING = typer.Option(False, "--gradient-checkpointing")
_TRAIN_EMA_DECAY = typer.Option(None, "--ema-decay", metavar="D",
                                help="Keep a moving average of the adapters (default: off).")
_TRAIN_COMPILE = typer.Option(False, "--compile", help="torch.compile the UNet (first step compiles, slowly).")
_TRAIN_FLIP_HORIZONTAL = typer.Option(None, "--flip-horizontal/--no-flip-horizontal")
_TRAIN_FLIP_VERTICAL = typer.Option(None, "--flip-vertical/--no-flip-vertical")
_TRAIN_TRAIN_COUNT = typer.Option(None, "--train-count", metavar="K",
                                  help="Train on the first K images (default: the first ceil(n/3)).")
_TRAIN_BASE_STEPS = typer.Option(None, "--base-steps", metavar="N",
                                 help=_preset_help("tiny: pre-training steps of its base", "base_steps"))
_TRAIN_BASE_BATCH_SIZE = typer.Option(None, "--base-batch-size", metavar="B",
                                      help=_preset_help("tiny: pre-training batch", "base_batch_size"))
_TRAIN_BASE_LR = typer.Option(None, "--base-lr", metavar="LR",
                              help=_preset_help("tiny: pre-training learning rate", "base_lr"))
_TRAIN_SAIM = typer.Option(True, "--saim/--no-saim", help="The interaction module (off: ablation).")
_TRAIN_SAIM_INIT = typer.Option("zero", "--saim-init", help="zero (step 0 = base) or default (released).")
_TRAIN_TEXT_ENCODER_LORA = typer.Option(True, "--text-encoder-lora/--no-text-encoder-lora")
_TRAIN_OUTPUT_HEAD = typer.Option(None, "--output-head/--no-output-head",
                                  help="Each branch's own update of the UNet's output convolution (default per "
                                       "preset: tiny on, sd15 off).")
_TRAIN_OBJECT_TOKEN = typer.Option("vfx", "--object-token", help="Global prompt: 'a OBJ with ANOMALY'.")
_TRAIN_ANOMALY_TOKEN = typer.Option("sks", "--anomaly-token", help="Anomaly branch prompt.")
_TRAIN_BCM = typer.Option(False, "--bcm", help="Background compensation (objects on a background).")
_TRAIN_BCM_FORM = typer.Option("additive", "--bcm-form", help="additive (paper) or gated (released code).")
_TRAIN_BACKGROUND_LORA = typer.Option("global", "--background-lora",
                                      help="BCM: the background through the global LoRA (released code) or frozen.")
_TRAIN_OBJECT_MASKS = typer.Option(None, "--object-masks", metavar="DIR",
                                   help="BCM: object masks made with any tool, DIR/<stem>.png.")
_TRAIN_OBJECT_SEGMENTER = typer.Option("border", "--object-segmenter",
                                       help="BCM: border (weight-free) or module.path:factory.")
_TRAIN_CANVAS = typer.Option(None, "--canvas", help=_preset_help(
    "What the model draws: image (the whole image, the paper) or window (windows around the defects at the data's "
    "detail, blended into real normal images)", "canvas"))
_TRAIN_WORKING_RESOLUTION = typer.Option(None, "--working-resolution", metavar="PX",
                                         help="Window canvas: the side of the images read and written "
                                              "(default: 4 x --resolution).")
_TRAIN_WINDOW_MARGIN = typer.Option(0.5, "--window-margin", metavar="F",
                                    help="Window canvas: a window spans the anomaly plus F of its extent per side.")
_TRAIN_RESUME = typer.Option(False, "--resume", help="Continue from the run's latest checkpoint.")
_TRAIN_CONFIG = typer.Option(None, "--config", metavar="CALL.json", help=CONFIG_HELP)


@app.command("train")
def train_command(
    data: Path | None = _TRAIN_DATA,
    object_: str | None = _TRAIN_OBJECT,
    anomaly: str | None = _TRAIN_ANOMALY,
    out: Path | None = _TRAIN_OUT,
    layout: Path | None = _TRAIN_LAYOUT,
    preset: str = _TRAIN_PRESET,
    base_model: str | None = _TRAIN_BASE_MODEL,
    steps: int | None = _TRAIN_STEPS,
    batch_size: int | None = _TRAIN_BATCH_SIZE,
    gradient_accumulation: int = _TRAIN_GRADIENT_ACCUMULATION,
    lr: float | None = _TRAIN_LR,
    lr_schedule: str | None = _TRAIN_LR_SCHEDULE,
    rank: int | None = _TRAIN_RANK,
    lora_alpha: float | None = _TRAIN_LORA_ALPHA,
    resolution: int | None = _TRAIN_RESOLUTION,
    seed: int | None = _TRAIN_SEED,
    mixed_precision: str | None = _TRAIN_MIXED_PRECISION,
    checkpoint_every: int | None = _TRAIN_CHECKPOINT_EVERY,
    keep_checkpoints: int = _TRAIN_KEEP_CHECKPOINTS,
    gradient_checkpointing: bool = _TRAIN_GRADIENT_CHECKPOINTING,
    ema_decay: float | None = _TRAIN_EMA_DECAY,
    compile_: bool = _TRAIN_COMPILE,
    flip_horizontal: bool | None = _TRAIN_FLIP_HORIZONTAL,
    flip_vertical: bool | None = _TRAIN_FLIP_VERTICAL,
    train_count: int | None = _TRAIN_TRAIN_COUNT,
    base_steps: int | None = _TRAIN_BASE_STEPS,
    base_batch_size: int | None = _TRAIN_BASE_BATCH_SIZE,
    base_lr: float | None = _TRAIN_BASE_LR,
    saim: bool = _TRAIN_SAIM,
    output_head: bool | None = _TRAIN_OUTPUT_HEAD,
    saim_init: str = _TRAIN_SAIM_INIT,
    text_encoder_lora: bool = _TRAIN_TEXT_ENCODER_LORA,
    object_token: str = _TRAIN_OBJECT_TOKEN,
    anomaly_token: str = _TRAIN_ANOMALY_TOKEN,
    bcm: bool = _TRAIN_BCM,
    bcm_form: str = _TRAIN_BCM_FORM,
    background_lora: str = _TRAIN_BACKGROUND_LORA,
    object_masks: Path | None = _TRAIN_OBJECT_MASKS,
    object_segmenter: str = _TRAIN_OBJECT_SEGMENTER,
    canvas: str | None = _TRAIN_CANVAS,
    working_resolution: int | None = _TRAIN_WORKING_RESOLUTION,
    window_margin: float = _TRAIN_WINDOW_MARGIN,
    resume: bool = _TRAIN_RESUME,
    config: Path | None = _TRAIN_CONFIG,
) -> Any:
    """Train one (object, anomaly type) into RUN: config.json (every default), split, weights, loss, checkpoints.

    \b
    Example: dualanodiff train --data mvtec_ad --object bottle --anomaly broken_large --out runs/bottle-bl \\
             --preset sd15 --base-model stable-diffusion-v1-5/stable-diffusion-v1-5 --bcm
    Example: dualanodiff train --data synthetic --object washer --anomaly rust --out runs/washer-rust
    """
    from dualanodiff.stages import read_call, run_call
    from dualanodiff.training.finetune import train
    if config is not None:
        return run_call(read_call(config, "train"))
    settings = train_settings(locals())
    require_options("train", out=out)
    train(settings, out, resume=resume)


def _print_outcome(generated: Any) -> None:
    """The GEN's summary (QC's counts on a line of their own), or how far this process's share got."""
    from dualanodiff.stages import process_share

    summary = dict(generated.meta.get("summary", {}))
    qc_counts = summary.pop("qc", None)
    if summary:
        print(" ".join(f"{key}={value:.4f}" if isinstance(value, float) else f"{key}={value}"
                       for key, value in summary.items()))
    if qc_counts:
        rejected = ", ".join(f"{reason} {count}" for reason, count in qc_counts["rejected"].items() if count)
        print(f"QC: {qc_counts['accepted']} of {qc_counts['tried']} seeds tried passed (rejected: {rejected or 'none'})"
              + (f"; {qc_counts['given_up']} sample(s) given up after --qc-max-tries" if qc_counts["given_up"] else ""))
    if not summary:
        share = process_share()
        print(f"process {share['process_index']} of {share['num_processes']} made its share; "
              f"{len(generated.completed_indices())} samples are done (the process that completes the set writes "
              "the summary)")


_GENERATE_STRENGTH = typer.Option(None, "--strength", metavar="S",
                                  help="Window canvas: start from a training anomaly's window noised to S of the "
                                       f"schedule; 1: from pure noise, the paper (default: {WINDOW_STRENGTH} on "
                                       "windows, 1 on whole images).")
_GENERATE_COLOURS = typer.Option(None, "--colours",
                                 help="Window canvas: drawn (the anomaly as the model drew it), training (painted "
                                      "with its training anomaly's colours in the order of the drawn brightness) or "
                                      "start (the start's own real pixels, texture too; needs a strength below 1; "
                                      f"default: {WINDOW_COLOURS} on windows, training there at strength 1, drawn "
                                      "on whole images).")

_GENERATE_GUIDANCE = typer.Option(None, "--guidance", metavar="G",
                                  help="Classifier-free guidance scale (default: 2.0 with BCM, else 2.5).")
_GENERATE_BCM_UNCONDITIONAL = typer.Option("grey", "--bcm-unconditional",
                                           help="BCM: guidance's unconditional background, grey (released) or black.")
_GENERATE_BCM_NOISE = typer.Option("per_step", "--bcm-noise",
                                   help="BCM: noise the background afresh per step (released) or once (fixed).")
_GENERATE_SIZE_SPREAD = typer.Option(None, "--size-spread", metavar="S",
                                     help="Window canvas: scale each drawn anomaly's window by 2^u, u uniform in "
                                          "[-S, S], for sizes beyond the training anomalies' (0: theirs; default: "
                                          f"{WINDOW_SIZE_SPREAD} on windows, 0 on whole images).")
_GENERATE_TURNS = typer.Option(None, "--turns", metavar="K",
                               help="Window canvas: try each start turned by every 360/K degrees at each place and "
                                    "keep the best, for objects that lie at any angle (1: unturned; default: "
                                    f"{WINDOW_TURNS} on windows, 1 on whole images).")
_GENERATE_POSITION_WIDTH = typer.Option(None, "--position-width", metavar="W",
                                        help="Window canvas: place each anomaly near where its training anomaly lies "
                                             "on its object (along a screw from the head, out from a round object's "
                                             "centre), within about W of the object's length (0: anywhere on the "
                                             f"object; default: {WINDOW_POSITION_WIDTH} on windows).")
_GENERATE_ORIENTATIONS = typer.Option(None, "--orientations",
                                      help="Window canvas: any (each start one of the 8 quarter turns and mirrorings "
                                           "of its training anomaly's window, at random; needs a strength below 1) or "
                                           "training (as the training anomaly lies; default: "
                                           f"{WINDOW_ORIENTATIONS}).")
_GENERATE_QC_AREA_MARGIN = typer.Option(2.0, "--qc-area-margin", metavar="F",
                                        help="QC: the training masks' area range widened F times each way.")


@app.command("generate")
def generate_command(
    run: Path | None = typer.Argument(None, help="A training run folder."),
    num: int | None = typer.Option(None, "--num", metavar="N", help="How many triplets (the paper makes 1000)."),
    out: Path | None = typer.Option(None, "--out", metavar="GEN", help="The folder to write (resumable)."),
    steps: int = typer.Option(50, "--steps", metavar="K", help="Denoising steps."),
    guidance: float | None = _GENERATE_GUIDANCE,
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
    export_anomalib: Path | None = typer.Option(None, "--export-anomalib", metavar="ROOT",
                                                help="Also write them in anomalib's Folder layout under ROOT."),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the UNet (first batch compiles, slowly)."),
    qc: str = typer.Option("on", "--qc", help="on: reject a sample with an empty mask, a mask off the object, of "
                                               "an area no training mask has, or branches that disagree, and try "
                                               "the next seeds instead; off: keep every sample."),
    qc_max_tries: int = typer.Option(10, "--qc-max-tries", metavar="K", help="QC: seeds tried per sample."),
    qc_area_margin: float = _GENERATE_QC_AREA_MARGIN,
    qc_max_off_object: float = typer.Option(0.05, "--qc-max-off-object", metavar="P",
                                            help="QC: the largest share of a mask outside the object."),
    qc_max_disagreement: float = typer.Option(0.25, "--qc-max-disagreement", metavar="D",
                                              help="QC: the largest mean |I - I_a| inside the mask (0..1)."),
    bcm_unconditional: str = _GENERATE_BCM_UNCONDITIONAL,
    bcm_noise: str = _GENERATE_BCM_NOISE,
    strength: float | None = _GENERATE_STRENGTH,
    colours: str | None = _GENERATE_COLOURS,
    size_spread: float | None = _GENERATE_SIZE_SPREAD,
    turns: int | None = _GENERATE_TURNS,
    position_width: float | None = _GENERATE_POSITION_WIDTH,
    orientations: str | None = _GENERATE_ORIENTATIONS,
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
        require_options("generate", run=run, num=num, out=out)
        generated = generate(run, out, generate_settings(locals()), **process_share())
    _print_outcome(generated)
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
