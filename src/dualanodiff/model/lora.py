"""Per-branch LoRA for the UNet's attention projections, applied to the whole (b f) batch in one pass.

The two branches share one frozen projection W but each has its own low-rank update: stream s of every sample
group gets W x + B_s A_s x. peft's LoRA keeps one adapter active per forward pass (its mixed-batch mode loops over
adapters and serves inference only), so the branch dimension is handled here with a batched matmul instead: the
frozen projection runs once over the whole batch, each branch's update is applied to its own streams, and there is
no Python loop over branches. The text encoder's single shared LoRA does use peft.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dualanodiff.model.streams import BRANCHES, stream_branches


class BranchLoRA(nn.Module):
    """Low-rank updates for one linear projection, one per branch (stream 0 = global, 1 = anomaly).

    Streams past `num_branches` (the BCM background stream) get branch `background_branch`'s update (the released
    code runs the background through the global branch's LoRA), or none with None: the frozen base model.
    """

    def __init__(self, in_features: int, out_features: int, rank: int, *, num_branches: int = BRANCHES,
                 alpha: float | None = None, background_branch: int | None = None):
        super().__init__()
        self.num_branches = num_branches
        self.background_branch = background_branch
        self.scale = (alpha if alpha is not None else rank) / rank
        self.down = nn.Parameter(torch.empty(num_branches, in_features, rank))
        self.up = nn.Parameter(torch.zeros(num_branches, rank, out_features))
        # As peft does: Kaiming-uniform down projection and zero up projection, so a new adapter is the identity.
        bound = 1 / math.sqrt(in_features)
        nn.init.uniform_(self.down, -bound, bound)

    def forward(self, x: torch.Tensor, num_streams: int) -> torch.Tensor:
        """The update for `x` of shape ((b f), n, in) with f = num_streams; returns ((b f), n, out)."""
        batch_streams, tokens, _ = x.shape
        grouped = x.view(batch_streams // num_streams, num_streams, tokens, -1)
        branches = stream_branches(num_streams, self.background_branch, self.num_branches)
        # (b, streams, n, in) @ (streams, in, rank) broadcasts into one batched matmul per projection.
        update = grouped[:, : len(branches)] @ self.down[branches].to(x.dtype)
        update = (update @ self.up[branches].to(x.dtype)) * self.scale  # (b, streams with an update, n, out)
        if len(branches) < num_streams:
            update = torch.cat([update, update.new_zeros(update.shape[0], num_streams - len(branches),
                                                         *update.shape[2:])], dim=1)
        return update.reshape(batch_streams, tokens, -1)

    def fused_weight(self, base_weight: torch.Tensor, num_streams: int) -> torch.Tensor:
        """Per-stream weights (streams, in, out) with each branch's update folded into the frozen one (W^T + A B).

        For generation, where the adapters are fixed: one batched matmul per projection replaces the frozen matmul
        plus two low-rank ones. Streams past the branches get `background_branch`'s weight, or the frozen one.
        """
        frozen = base_weight.t()
        updates = (self.down @ self.up).to(frozen.dtype) * self.scale
        branches = stream_branches(num_streams, self.background_branch, self.num_branches)
        weights = [frozen + updates[branch] for branch in branches]
        return torch.stack(weights + [frozen] * (num_streams - len(branches)))
