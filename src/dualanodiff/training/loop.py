"""The optimisation loop both training recipes share: accelerate, checkpoints, resume, progress, loss log.

`finetune.py` (the dual-branch fine-tuning) and `tiny_base.py` (the tiny preset's base model) each build a model whose
forward returns (loss, per-part losses) and a `draw_batch(generator)` function; `fit` does the rest. Every random
draw of a step comes from one CPU generator whose state is checkpointed, so a resumed run reaches the same weights
as an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
from accelerate import Accelerator
from diffusers.training_utils import EMAModel
from torch import nn

from dualanodiff.errors import UserError
from dualanodiff.progress import progress
from dualanodiff.training.checkpoint import LossLog, latest_intact_checkpoint, save_checkpoint
from dualanodiff.training.settings import LR_SCHEDULES
from dualanodiff.weights import trainable_state_dict

GRADIENT_CLIP = 1.0


def make_accelerator(mixed_precision: str, gradient_accumulation: int = 1) -> Accelerator:
    """`auto` picks bf16 on a GPU that has it, fp16 (with loss scaling) on another GPU, full precision on CPU."""
    if mixed_precision == "auto":
        if torch.cuda.is_available():
            mixed_precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            mixed_precision = "no"
    elif mixed_precision == "fp16" and not torch.cuda.is_available():
        raise UserError("--mixed-precision fp16 needs a CUDA GPU (PyTorch's CPU kernels mix float16 and float32 "
                        "badly); use bf16 or no on the CPU")
    return Accelerator(mixed_precision=mixed_precision, gradient_accumulation_steps=gradient_accumulation)


def frozen_dtype(accelerator: Accelerator) -> torch.dtype:
    """Frozen weights can live in half precision under mixed precision; trainable ones stay in float32."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(accelerator.mixed_precision, torch.float32)


def flip_variants(pixels: torch.Tensor, horizontal: bool, vertical: bool) -> torch.Tensor:
    """(N, ..., H, W) -> (N, V, ..., H, W): every combination of the enabled flips, the identity first."""
    variants = [pixels]
    if horizontal:
        variants.append(pixels.flip(-1))
    if vertical:
        variants += [variant.flip(-2) for variant in variants]
    return torch.stack(variants, dim=1)


WARMUP_FRACTION = 0.05


def lr_factor(schedule: str, step: int, steps: int) -> float:
    """`constant` (the released code's); `cosine`: linear warm-up over the first 5 % of the steps, then a cosine
    decay to a tenth, which ends a short, high-learning-rate run on settled weights."""
    if schedule == "constant":
        return 1.0
    if schedule != "cosine":
        raise ValueError(f"unknown learning-rate schedule {schedule!r}; use one of {LR_SCHEDULES}")
    warmup = max(1, round(WARMUP_FRACTION * steps))
    if step < warmup:
        return (step + 1) / warmup
    fraction = (step - warmup) / max(1, steps - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * fraction))


def fit(accelerator: Accelerator, model: nn.Module, draw_batch: Callable[[torch.Generator], tuple], *,
        run_dir: Path, steps: int, lr: float, seed: int, checkpoint_every: int, keep_checkpoints: int,
        loss_columns: tuple[str, ...], title: str, ema_decay: float | None = None,
        lr_schedule: str = "constant") -> tuple[LossLog, EMAModel | None]:
    """Train `model` for `steps` optimizer steps, resuming from the latest checkpoint in `run_dir` if any."""
    parameters = [param for param in model.parameters() if param.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=1e-2)
    ema = EMAModel(parameters, decay=ema_decay, use_ema_warmup=True) if ema_decay else None
    # One generator per process, so that data-parallel workers draw different batches.
    generator = torch.Generator().manual_seed(seed + 1_000_003 * accelerator.process_index)
    log = LossLog(("loss", *loss_columns))
    start = 0
    checkpoint = latest_intact_checkpoint(run_dir)
    if checkpoint is not None:
        folder, tensors, state = checkpoint
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name in tensors:
                    param.copy_(tensors[name])
        optimizer.load_state_dict(state["optimizer"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        log.rows = [list(row) for row in state["loss"]]
        start = state["step"]
        accelerator.print(f"resuming from {folder} (step {start} of {steps})")
        if len(state["generators"]) == accelerator.num_processes:
            # A copy: the saved states are rows of one tensor, and set_state crashes on a view at an offset.
            generator.set_state(state["generators"][accelerator.process_index].clone())
        else:
            # Saved by another number of processes: new per-process streams, so the batches from here on differ
            # from those of an uninterrupted run.
            generator.manual_seed(seed + 1_000_003 * accelerator.process_index + 1_000_000_007 * start)
            accelerator.print(f"the checkpoint was written by {len(state['generators'])} process(es), "
                              f"resumed by {accelerator.num_processes}: batches are drawn afresh")

    wrapped, optimizer = accelerator.prepare(model, optimizer)
    bar = progress(total=steps, initial=start, desc=title, disable=not accelerator.is_local_main_process,
                    dynamic_ncols=True)
    wrapped.train()
    for step in range(start, steps):
        for group in optimizer.param_groups:  # a function of the step alone, so resuming needs no state for it
            group["lr"] = lr * lr_factor(lr_schedule, step, steps)
        for _ in range(accelerator.gradient_accumulation_steps):
            with accelerator.accumulate(wrapped):
                loss, parts = wrapped(*draw_batch(generator))
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(parameters, GRADIENT_CLIP)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            ema.step(parameters)
        log.add(step + 1, loss.item(), *parts.tolist())
        bar.update(1)
        bar.set_postfix(loss=f"{log.rows[-1][1]:.4f}", refresh=False)
        if (step + 1) % checkpoint_every == 0 or step + 1 == steps:
            _checkpoint(accelerator, model, optimizer, generator, ema, log, run_dir, step + 1,
                        keep_checkpoints, title)
    bar.close()
    return log, ema


def _checkpoint(accelerator: Accelerator, model: nn.Module, optimizer: torch.optim.Optimizer,
                generator: torch.Generator, ema: EMAModel | None, log: LossLog, run_dir: Path, step: int,
                keep: int, title: str) -> None:
    generators = accelerator.gather(generator.get_state()[None].to(accelerator.device)).cpu()
    if accelerator.is_main_process:
        state = {"optimizer": optimizer.state_dict(), "generators": list(generators), "loss": log.rows}
        if ema is not None:
            state["ema"] = ema.state_dict()
        save_checkpoint(run_dir, step, trainable_state_dict(model), state, keep)
        log.write(run_dir, title)
    accelerator.wait_for_everyone()
