"""Pretrained weights the evaluation needs (Inception-v3, VGG16, LPIPS, ResNet-18): found locally, loaded safely.

Nothing is downloaded. A weights file comes from an explicit path, else from torch hub's cache
(`torch.hub.get_dir()/checkpoints/`, under the file name torchvision itself would download), else the user is told
in one line which file to put where. Files are read with safetensors or `torch.load(weights_only=True)` only.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from dualanodiff.errors import ModelError, first_line


def hub_checkpoints_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_weights(explicit: str | Path | None, file_names: Iterable[str], *, what: str, option: str,
                 extra_candidates: Iterable[Path] = ()) -> Path:
    """The weights file to use: `explicit` if given (it must exist), else the first existing candidate."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ModelError(f"{path}: {what} weights file not found ({option})")
        return path
    file_names = list(file_names)
    candidates = [hub_checkpoints_dir() / name for name in file_names] + list(extra_candidates)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ModelError(f"{what} weights are needed and cannot be downloaded here: pass {option} FILE, or put "
                     f"{file_names[0]} in {hub_checkpoints_dir()}/")


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a .safetensors file or a torch file loaded with weights_only=True (no arbitrary code)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: weights file not found")
    try:
        if path.suffix == ".safetensors":
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, ValueError, EOFError, SafetensorError) as error:
        raise ModelError(f"{path}: cannot be read as safe weights (safetensors or a weights-only torch file): "
                         f"{first_line(error)}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise ModelError(f"{path}: does not hold a state dict (a mapping of names to tensors)")
    return state
