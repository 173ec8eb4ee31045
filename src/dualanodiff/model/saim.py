"""SAIM, the self-attention interaction module of DualAnoDiff (SPEC section 2).

After every attention block of the UNet the two branches exchange information, position by position: each spatial
position becomes a sequence of two tokens (one per branch) that attend to each other. This keeps the anomaly part
(anomaly branch) and the whole image (global branch) spatially consistent.

    x = Linear_in(LayerNorm(h));  (b f) n c -> (b n) f c;  x = Linear_o(SDPA(Linear_q x, Linear_k x, Linear_v x))
    back to (b f) n c;  h = h + x
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dualanodiff.model.streams import BRANCHES


class SAIM(nn.Module):
    """Position-aligned, single-head attention across the two branches of each pair.

    `zero_init=True` zero-initialises the output projection, so that a fresh SAIM is the identity and step 0 of
    training reproduces the base model; `False` keeps PyTorch's default initialisation, as the released code does.
    """

    def __init__(self, channels: int, *, zero_init: bool = True):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.proj_in = nn.Linear(channels, channels)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.proj_out = nn.Linear(channels, channels)
        if zero_init:
            nn.init.zeros_(self.proj_out.weight)
            nn.init.zeros_(self.proj_out.bias)

    def forward(self, hidden_states: torch.Tensor, num_streams: int) -> torch.Tensor:
        """`hidden_states`: ((b f), n, c) with f = num_streams; only the first two streams of a group interact."""
        batch_streams, tokens, channels = hidden_states.shape
        grouped = hidden_states.view(batch_streams // num_streams, num_streams, tokens, channels)
        branches = grouped[:, :BRANCHES]
        # (b, f, n, c) -> (b n, f, c): each position is a sequence of one token per branch.
        x = self.proj_in(self.norm(branches)).permute(0, 2, 1, 3).reshape(-1, BRANCHES, channels)
        x = F.scaled_dot_product_attention(self.to_q(x), self.to_k(x), self.to_v(x))
        x = self.proj_out(x).view(-1, tokens, BRANCHES, channels).permute(0, 2, 1, 3)
        if num_streams == BRANCHES:
            return (grouped + x).view_as(hidden_states)
        # Extra streams (the BCM background) pass through unchanged.
        return torch.cat([branches + x, grouped[:, BRANCHES:]], dim=1).view_as(hidden_states)
