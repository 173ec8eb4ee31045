"""`dualanodiff train`, `generate` and `demo`: the model's commands."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from dualanodiff.cli.app import app

PRESET_HELP = "tiny (CPU, its own small base) or sd15 (Stable Diffusion 1.x/2.x weights)."


@app.command("train")
def train_command(
    data: Path = typer.Option(..., "--data", metavar="ROOT", help="The data set's folder."),
    object_: str = typer.Option(..., "--object", metavar="OBJ", help="The object (MVTec AD category)."),
    anomaly: str = typer.Option(..., "--anomaly", metavar="TYPE", help="The anomaly type to learn."),
    out: Path = typer.Option(..., "--out", metavar="RUN", help="The run folder to write."),
    layout: Path | None = typer.Option(None, "--layout", metavar="FILE", help="JSON layout of a custom data set."),
    preset: str = typer.Option("tiny", "--preset", help=PRESET_HELP),
    base_model: str | None = typer.Option(None, "--base-model", metavar="ID_OR_PATH",
                                          help="sd15: a diffusers folder or hub id; tiny: a tiny base folder."),
    steps: int | None = typer.Option(None, "--steps", metavar="N", help="Optimizer steps (preset default)."),
    batch_size: int | None = typer.Option(None, "--batch-size", metavar="B", help="Image pairs per step."),
    gradient_accumulation: int = typer.Option(1, "--gradient-accumulation", metavar="K"),
    lr: float | None = typer.Option(None, "--lr", help="Learning rate (sd15: 2e-5 as the released code)."),
    lr_schedule: str | None = typer.Option(None, "--lr-schedule",
                                           help="constant (sd15, as the released code) or cosine (tiny)."),
    rank: int | None = typer.Option(None, "--rank", metavar="R", help="LoRA rank of each branch."),
    resolution: int | None = typer.Option(None, "--resolution", metavar="PX", help="Training image side."),
    seed: int | None = typer.Option(None, "--seed", metavar="S"),
    mixed_precision: str | None = typer.Option(None, "--mixed-precision", help="auto, no, fp16 or bf16."),
    checkpoint_every: int | None = typer.Option(None, "--checkpoint-every", metavar="K"),
    gradient_checkpointing: bool = typer.Option(False, "--gradient-checkpointing"),
    ema_decay: float | None = typer.Option(None, "--ema-decay", metavar="D",
                                           help="Keep a moving average of the adapters (tiny: 0.995; 0: off)."),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the UNet (first step compiles, slowly)."),
    flip_horizontal: bool | None = typer.Option(None, "--flip-horizontal/--no-flip-horizontal"),
    flip_vertical: bool | None = typer.Option(None, "--flip-vertical/--no-flip-vertical"),
    train_count: int | None = typer.Option(None, "--train-count", metavar="K",
                                           help="Train on the first K images (default: the first ceil(n/3))."),
    base_steps: int | None = typer.Option(None, "--base-steps", metavar="N",
                                          help="tiny: pre-training steps of its base model."),
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
    from dualanodiff.config import TrainConfig
    from dualanodiff.model.dual import DualConfig
    from dualanodiff.train import train

    model = DualConfig(saim=saim, saim_init=saim_init, text_encoder_lora=text_encoder_lora,
                       object_token=object_token, anomaly_token=anomaly_token, bcm=bcm, bcm_form=bcm_form)
    config = TrainConfig(
        data_root=str(data), object=object_, anomaly=anomaly, preset=preset,
        layout=str(layout) if layout else None, base_model=base_model, resolution=resolution, steps=steps,
        batch_size=batch_size, gradient_accumulation=gradient_accumulation, lr=lr, lr_schedule=lr_schedule,
        rank=rank, seed=seed,
        mixed_precision=mixed_precision, checkpoint_every=checkpoint_every,
        gradient_checkpointing=gradient_checkpointing, compile=compile_, ema_decay=ema_decay,
        flip_horizontal=flip_horizontal,
        flip_vertical=flip_vertical, train_count=train_count, base_steps=base_steps,
        object_masks=str(object_masks) if object_masks else None, object_segmenter=object_segmenter, model=model)
    train(config, out, resume=resume)


@app.command("generate")
def generate_command(
    run: Path = typer.Argument(..., help="A training run folder."),
    num: int = typer.Option(..., "--num", metavar="N", help="How many triplets (the paper makes 1000)."),
    out: Path = typer.Option(..., "--out", metavar="GEN", help="The folder to write (resumable)."),
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
) -> None:
    """Generate anomaly image / anomaly part / mask triplets from a trained run.

    \b
    GEN gets image/NNNN.png, fg/NNNN.png, mask/NNNN.png and meta.json (settings, per-sample seed, mask
    area, branch agreement, background). An interrupted job continues where it stopped; under
    `accelerate launch`, each process makes its share of the samples and the files are the same.

    \b
    Example: dualanodiff generate runs/washer-rust --num 1000 --out gen/washer-rust --export-mvtec aug_mvtec
    """
    from dualanodiff.generate import generate
    from dualanodiff.pipeline import default_device

    process_index = int(os.environ.get("RANK", 0))
    num_processes = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = os.environ.get("LOCAL_RANK")  # set by accelerate launch / torchrun: one GPU per process
    if device is None and local_rank is not None and default_device().type == "cuda":
        device = f"cuda:{local_rank}"
    generated = generate(run, out, num=num, steps=steps, guidance=guidance, batch_size=batch_size, seed=seed,
                         mask_method=mask_method, scheduler=scheduler, background_every=background_every,
                         backgrounds=backgrounds, device=device, process_index=process_index,
                         num_processes=num_processes, export_mvtec=export_mvtec, compile=compile_)
    summary = generated.meta.get("summary", {})
    if summary:
        print(" ".join(f"{key}={value:.4f}" if isinstance(value, float) else f"{key}={value}"
                       for key, value in summary.items()))
    else:
        print(f"process {process_index} of {num_processes} made its share; {len(generated.completed_indices())} of "
              f"{num} samples are done (the process that completes the set writes the summary)")
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
