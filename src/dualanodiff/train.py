"""Training one DualAnoDiff model per (object, anomaly type): `dualanodiff train`.

The recipe: split the anomaly images (split.json), load the frozen base (a Stable Diffusion checkpoint, or the tiny
preset's own base), wrap it in the dual-branch model, encode every training image, anomaly part (and, with BCM,
background) once, then optimise the adapters with `training.fit`. The run folder ends up self-contained:

    RUN/config.json          every setting, the base model's name or folder, the split rule
    RUN/split.json           which images trained and which are held out
    RUN/weights.safetensors  LoRA (both branches), SAIM, text-encoder LoRA, BCM: never the frozen base
    RUN/base/                the tiny preset's base model (sd15 runs name their base in config.json instead)
    RUN/object_masks/, RUN/backgrounds/   with BCM: the object masks used and the normal images' backgrounds
    RUN/loss.csv, loss.png   the training curve
    RUN/checkpoints/         the latest checkpoints, for --resume
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from dualanodiff.checkpoint import WEIGHTS_FILE, save_weights
from dualanodiff.config import TrainConfig, read_run_config, write_run_config
from dualanodiff.data import AnomalyTrainingSet, load_source, make_split, split_rule_text, write_split
from dualanodiff.errors import UserError
from dualanodiff.model.base import BaseModel, load_base_model
from dualanodiff.model.dual import DualAnoDiffModel
from dualanodiff.objects import prepare_backgrounds
from dualanodiff.pretrain import cached_tiny_base
from dualanodiff.training import fit, flip_variants, frozen_dtype, make_accelerator

TINY_BASE_FOLDER = "base"


def _prepare_run_dir(run_dir: Path, config: TrainConfig, resume: bool) -> None:
    if (run_dir / "config.json").exists():
        if not resume:
            raise UserError(f"{run_dir}: already holds a training run; pass --resume to continue it or choose "
                            "another --out")
        previous, current = read_run_config(run_dir)[0].to_dict(), config.to_dict()
        changed = sorted(key for key, value in current.items() if previous.get(key) != value)
        if changed:
            raise UserError(f"{run_dir}: --resume with other settings than the run was started with "
                            f"({', '.join(changed)})")
    run_dir.mkdir(parents=True, exist_ok=True)


def _base_model(config: TrainConfig, source, run_dir: Path, accelerator: Accelerator) -> tuple[BaseModel, str]:
    """The frozen base and how config.json names it (a hub id, a folder, or the run's own base/ copy)."""
    if config.preset != "tiny":
        return load_base_model(config.base_model), config.base_model
    if config.base_model is not None:
        model_dir = Path(config.base_model)
    else:
        model_dir = cached_tiny_base(source.normal_train(config.object), config.object,
                                     resolution=config.resolution, steps=config.base_steps,
                                     batch_size=config.base_batch_size, lr=config.base_lr, seed=config.seed,
                                     prompt=f"a {config.model.object_token}",
                                     flip_horizontal=config.flip_horizontal,
                                     flip_vertical=config.flip_vertical)
    own_copy = run_dir / TINY_BASE_FOLDER
    if model_dir.resolve() != own_copy.resolve() and accelerator.is_main_process:
        shutil.rmtree(own_copy, ignore_errors=True)
        shutil.copytree(model_dir, own_copy)
    accelerator.wait_for_everyone()  # the other processes load the copy once it is complete
    return load_base_model(own_copy), TINY_BASE_FOLDER


def train(config: TrainConfig, run_dir: str | Path, *, resume: bool = False) -> Path:
    """Train the dual-branch adapters for one anomaly type; returns the run folder."""
    config = config.resolved()
    run_dir = Path(run_dir)
    accelerator = make_accelerator(config.mixed_precision, config.gradient_accumulation)
    _prepare_run_dir(run_dir, config, resume)
    # Under `accelerate launch`, every process checks the folder before the main process writes into it.
    accelerator.wait_for_everyone()
    source = load_source(config.data_root, config.layout)
    samples = source.anomaly_samples(config.object, config.anomaly)
    split = make_split(samples, config.train_count)
    if accelerator.is_main_process:
        write_split(run_dir / "split.json", split, object=config.object, anomaly=config.anomaly,
                    rule_text=split_rule_text(config.train_count))
    accelerator.print(f"training on {len(split.train)} of {len(samples)} '{config.anomaly}' images of "
                      f"'{config.object}' ({len(split.test)} held out); settings:")
    for key, value in config.to_dict().items():
        accelerator.print(f"  {key}: {value}")

    base, base_name = _base_model(config, source, run_dir, accelerator)
    dtype = frozen_dtype(accelerator)
    for frozen in (base.unet, base.text_encoder, base.codec):
        # (diffusers warns on any dtype cast of a UNet, so cast only when the dtype changes)
        frozen.to(accelerator.device, **({"dtype": dtype} if dtype != torch.float32 else {}))
    if config.gradient_checkpointing:
        base.unet.enable_gradient_checkpointing()
    if config.compile:
        base.unet.compile()  # in place, so parameter names (and the saved weights) stay the same
    set_seed(config.seed)  # the adapters' initial weights (LoRA down-projections, SAIM) are random
    model = DualAnoDiffModel(base, config.model).to(accelerator.device)
    if accelerator.is_main_process:
        write_run_config(run_dir, config, base_model_path=base_name)

    examples = AnomalyTrainingSet(split.train, config.resolution)
    streams = [examples.images, examples.parts]
    if config.model.bcm:
        streams.append(prepare_backgrounds(config, source, split.train, examples.images, run_dir))
    pixels = flip_variants(torch.stack(streams, dim=1), config.flip_horizontal, config.flip_vertical)
    mean, std = base.codec.encode_distribution(pixels.flatten(0, 2).to(accelerator.device, dtype))
    mean = mean.float().cpu().view(*pixels.shape[:3], *mean.shape[1:])  # (images, variants, streams, C, h, w)
    std = std.float().cpu().view_as(mean)
    timesteps = model.noise_scheduler.config.num_train_timesteps

    def draw_batch(generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        index = torch.randint(mean.shape[0], (config.batch_size,), generator=generator)
        variant = torch.randint(mean.shape[1], (config.batch_size,), generator=generator)
        clean = mean[index, variant] + std[index, variant] * torch.randn((config.batch_size, *mean.shape[2:]),
                                                                  generator=generator)
        noise = torch.randn(clean.shape, generator=generator)  # independent noise for every stream
        shared_t = torch.randint(0, timesteps, (config.batch_size,), generator=generator)  # one t per pair
        return tuple(x.to(accelerator.device) for x in (clean, noise, shared_t))

    _, ema = fit(accelerator, model, draw_batch, run_dir=run_dir, steps=config.steps, lr=config.lr,
                 lr_schedule=config.lr_schedule, seed=config.seed, checkpoint_every=config.checkpoint_every,
                 keep_checkpoints=config.keep_checkpoints, loss_columns=("global_branch", "anomaly_branch"),
                 title=f"training {config.object}/{config.anomaly}", ema_decay=config.ema_decay or None)
    if ema is not None:  # the run keeps the average of the last steps' adapters, not the last step's
        ema.copy_to(param for param in model.parameters() if param.requires_grad)
    if accelerator.is_main_process:
        save_weights(run_dir / WEIGHTS_FILE, model.adapter_state_dict(),
                     metadata={"format": "dualanodiff-adapters/1", "base_model": base_name})
        accelerator.print(f"trained weights: {run_dir / WEIGHTS_FILE}")
    accelerator.wait_for_everyone()
    return run_dir
