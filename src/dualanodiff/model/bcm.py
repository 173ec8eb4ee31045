"""BCM, the background compensation module (SPEC section 3).

A background image I_b (the object masked out) runs through the UNet as an extra stream of the same batch. At each
self-attention, the global branch's key/value input is mixed with an MLP of the background stream's input at the
same layer, which tells the model where the object ends and what the background looks like:

    additive (paper):   h' = h + gamma * MLP(h_b),        gamma learnable, initialised to 0.1
    gated (released):   h' = (1 - a) * h + a * MLP(h_b),  a learnable, initialised to 0

The query is still computed from h. With gamma = 0 (or a = 0) the module is the identity.
"""

from __future__ import annotations

import torch
from torch import nn

from dualanodiff.model.config import BCM_FORMS, BCMForm

_HIDDEN = 320  # the released code's MLP width


class BackgroundCompensation(nn.Module):
    def __init__(self, channels: int, form: BCMForm = "additive"):
        super().__init__()
        if form not in BCM_FORMS:
            raise ValueError(f"unknown BCM form {form!r}; use 'additive' or 'gated'")
        self.form = form
        self.mlp = nn.Sequential(nn.Linear(channels, _HIDDEN), nn.Linear(_HIDDEN, channels))
        self.weight = nn.Parameter(torch.tensor(0.1 if form == "additive" else 0.0))

    def forward(self, hidden_states: torch.Tensor, background_states: torch.Tensor) -> torch.Tensor:
        """The global branch's new key/value input, from its input and the background stream's, both (b, n, c)."""
        background = self.mlp(background_states)
        weight = self.weight.to(hidden_states.dtype)
        if self.form == "additive":
            return hidden_states + weight * background
        return (1 - weight) * hidden_states + weight * background
