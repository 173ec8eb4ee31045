"""Which device a command runs on: the one named, else CUDA when present, else the CPU."""

from __future__ import annotations

import os

import torch

from dualanodiff.errors import UserError


def resolve_device(device: str | torch.device | None, option: str = "--device") -> torch.device:
    """`device` as given (checked to exist here), or CUDA when present, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise UserError(f"{option} {device}: not a device name (use cpu or cuda)") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"{option} {device}: no CUDA device is available here (use {option} cpu)")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise UserError(f"{option} {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return resolved


def process_device(device: str | None) -> torch.device:
    """`resolve_device`, except that under `accelerate launch` / torchrun with GPUs and no device named, each
    process takes the GPU of its local rank."""
    local_rank = os.environ.get("LOCAL_RANK")
    if device is None and local_rank is not None and torch.cuda.is_available():
        device = f"cuda:{local_rank}"
    return resolve_device(device)
