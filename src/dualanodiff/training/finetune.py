"""Fine-tuning one DualAnoDiff model per (object, anomaly type): `dualanodiff train`.

The recipe: split the anomaly images, load the frozen base (a Stable Diffusion checkpoint, or the tiny preset's own
base), wrap it in the dual-branch model, encode every training image, anomaly part (and, with BCM, background) once,
then optimise the adapters with `train.loop.fit`. What ends up in the RUN folder is `train.run`'s to say.
"""

from __future__ import annotations

import shutil
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from dualanodiff.data import (
    AnomalySample,
    DataSource,
    TrainingExamples,
    load_source,
    load_training_examples,
    make_split,
    to_uint8,
)
from dualanodiff.errors import ModelError
from dualanodiff.io import folder_lock, ordinary_permissions
from dualanodiff.model.base import BaseModel, load_base_model, move_frozen
from dualanodiff.model.dual import DualAnoDiffModel
from dualanodiff.training.backgrounds import prepare_objects
from dualanodiff.training.loop import fit, flip_variants, frozen_dtype, make_accelerator
from dualanodiff.training.run import Run
from dualanodiff.training.settings import TrainSettings
from dualanodiff.training.tiny_base import cached_tiny_base
from dualanodiff.training.windows import training_windows, window_statistics


def _tiny_base_model(run: Run, source: DataSource, accelerator: Accelerator) -> tuple[BaseModel, str]:
    """The tiny preset's frozen base, from the run's own base/ copy, and how config.json names it."""
    settings = run.settings
    if settings.base_model is not None:
        model_dir = Path(settings.base_model)
        if not model_dir.is_dir():
            raise ModelError(f"--base-model {model_dir}: no such folder (the tiny preset takes a tiny base's "
                             "folder, or none to pre-train one)")
    else:
        model_dir = cached_tiny_base(source.normal_train(settings.object), settings.object, settings.tiny_base())
    own_copy = run.tiny_base_dir
    if model_dir.resolve() != own_copy.resolve() and accelerator.is_main_process:
        shutil.rmtree(own_copy, ignore_errors=True)
        shutil.copytree(model_dir, own_copy)
        ordinary_permissions(own_copy)  # a base cached by an earlier version may hold 0600 files
    accelerator.wait_for_everyone()  # the other processes load the copy once it is complete
    return load_base_model(own_copy), own_copy.name


def _training_pixels(run: Run, source: DataSource, training: list[AnomalySample],
                     examples: TrainingExamples) -> torch.Tensor:
    """(images, variants, streams, 3, R, R): the flips of each whole image (image canvas) or windows around each
    anomaly (window canvas), of I, I_a and, with BCM, I_b."""
    settings = run.settings
    streams = [examples.images, examples.parts]
    objects = None
    if settings.model.bcm or settings.windowed:
        objects = prepare_objects(run, source, training, examples.images, backgrounds=settings.model.bcm)
        if objects.backgrounds is not None:
            streams.append(objects.backgrounds)
    stacked = torch.stack(streams, dim=1)
    flips = (settings.flip_horizontal, settings.flip_vertical)
    if not settings.windowed:
        return flip_variants(stacked, *flips)
    masks = examples.masks[:, 0].bool().numpy()
    run.write_windows(window_statistics(to_uint8(examples.images), masks, objects.training, settings.window_margin,
                                        settings.resolution))
    return training_windows(stacked, masks, margin=settings.window_margin, size=settings.resolution, flips=flips,
                            generator=torch.Generator().manual_seed(settings.seed))


def train(settings: TrainSettings, run_dir: str | Path, *, resume: bool = False) -> Run:
    """Train the dual-branch adapters for one anomaly type into `run_dir`; returns the run."""
    settings = settings.resolved()
    # A Stable Diffusion base loads first: the sd15 preset's resolution is the base's own, filled before the run
    # folder is made (config.json records it, and --resume compares it with the one the run was started with).
    base = None if settings.preset == "tiny" else load_base_model(settings.base_model)
    if base is not None and settings.resolution is None:
        settings = replace(settings, resolution=base.resolution).resolved()
    if base is not None:
        base.check_resolution(settings.resolution)  # before the run folder is touched
    accelerator = make_accelerator(settings.mixed_precision, settings.gradient_accumulation)
    # One writer per run folder (under `accelerate launch`, its main process holds the folder for all of them).
    main = accelerator.is_main_process
    holder = folder_lock(run_dir, tidy=accelerator.num_processes == 1) if main else nullcontext()
    with holder:
        return _train(Run.create(run_dir, settings, resume=resume), accelerator, base)


def _train(run: Run, accelerator: Accelerator, base: BaseModel | None) -> Run:
    settings = run.settings
    # Under `accelerate launch`, every process checks the folder before the main process writes into it.
    accelerator.wait_for_everyone()
    source = load_source(settings.data_root, settings.layout)
    samples = source.anomaly_samples(settings.object, settings.anomaly)
    split = make_split(samples, settings.train_count)
    if accelerator.is_main_process:
        run.write_split(split)
    accelerator.print(f"training on {len(split.train)} of {len(samples)} '{settings.anomaly}' images of "
                      f"'{settings.object}' ({len(split.test)} held out); settings:")
    for key, value in settings.to_dict().items():
        accelerator.print(f"  {key}: {value}")
    # A bad mask fails before pre-training.
    examples = load_training_examples(split.train, settings.working_side)

    base, base_name = (base, settings.base_model) if base is not None else _tiny_base_model(run, source, accelerator)
    base.check_resolution(settings.resolution)
    dtype = frozen_dtype(accelerator)
    move_frozen((base.unet, base.text_encoder, base.codec), accelerator.device, dtype)
    if settings.gradient_checkpointing:
        base.unet.enable_gradient_checkpointing()
    if settings.compile:
        base.unet.compile()  # in place, so parameter names (and the saved weights) stay the same
    set_seed(settings.seed)  # the adapters' initial weights (LoRA down-projections, SAIM) are random
    model = DualAnoDiffModel(base, settings.model).to(accelerator.device)
    if accelerator.is_main_process:
        run.write_config(base_name)

    pixels = _training_pixels(run, source, split.train, examples)
    mean, std = base.codec.encode_distribution(pixels.flatten(0, 2).to(accelerator.device, dtype))
    mean = mean.float().cpu().view(*pixels.shape[:3], *mean.shape[1:])  # (images, variants, streams, C, h, w)
    std = std.float().cpu().view_as(mean)
    timesteps = model.noise_scheduler.config.num_train_timesteps
    batch_size = settings.batch_size

    def draw_batch(generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        index = torch.randint(mean.shape[0], (batch_size,), generator=generator)
        variant = torch.randint(mean.shape[1], (batch_size,), generator=generator)
        clean = mean[index, variant] + std[index, variant] * torch.randn((batch_size, *mean.shape[2:]),
                                                                  generator=generator)
        noise = torch.randn(clean.shape, generator=generator)  # independent noise for every stream
        shared_t = torch.randint(0, timesteps, (batch_size,), generator=generator)  # one t per pair
        return tuple(x.to(accelerator.device) for x in (clean, noise, shared_t))

    _, ema = fit(accelerator, model, draw_batch, run_dir=run.root, steps=settings.steps, lr=settings.lr,
                 lr_schedule=settings.lr_schedule, seed=settings.seed, checkpoint_every=settings.checkpoint_every,
                 keep_checkpoints=settings.keep_checkpoints, loss_columns=("global_branch", "anomaly_branch"),
                 title=f"training {settings.object}/{settings.anomaly}", ema_decay=settings.ema_decay or None)
    if ema is not None:  # the run keeps the average of the last steps' adapters, not the last step's
        ema.copy_to(param for param in model.parameters() if param.requires_grad)
    if accelerator.is_main_process:
        model.save_pretrained(run.root)
        accelerator.print(f"trained weights: {run.weights_path}")
    accelerator.wait_for_everyone()
    return run
