"""Weight files: safetensors written atomically and read without ever running code (a model folder is untrusted)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from dualanodiff.errors import ModelError
from dualanodiff.io import atomic_write


def save_weights(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> Path:
    cpu = {name: tensor.detach().to("cpu").contiguous() for name, tensor in tensors.items()}
    return atomic_write(path, lambda tmp: save_file(cpu, str(tmp), metadata=metadata))


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ModelError(f"{path}: weights file not found")
    try:
        return load_file(str(path))
    except Exception as error:  # safetensors raises its own error types for a damaged file
        raise ModelError(f"{path}: not a readable safetensors file ({error})") from None


def trainable_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """The parameters that train (detached): what a run or a checkpoint stores, never the frozen base."""
    return {name: param.detach() for name, param in module.named_parameters() if param.requires_grad}
