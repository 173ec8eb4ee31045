"""Per-branch output convolution: each branch's own full update of the UNet's last convolution.

The tiny preset's base has only seen the object's normal images, so its frozen layers can barely draw what those
never show: the saturated colour of a rust spot, or the black field around an anomaly part. LoRA on the attention
projections alone cannot teach them that (measured on the synthetic washer: the drawn rust came out halfway between
orange and the metal's grey, the anomaly part's black as dark brown). Giving each branch its own update of the
convolution that turns features into pixels lets it map the features its LoRA learned to any colour. Stable
Diffusion's UNet has seen every colour, which is why the sd15 preset does without it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dualanodiff.model.streams import BRANCHES, stream_branches


class BranchOutputConv(nn.Module):
    """`conv` (frozen) plus one update per branch, zero at the start (so step 0 is the base), applied to the
    interleaved batch ((b f), C, H, W) with f = `num_streams`. Streams past the branches (BCM's background) get
    `background_branch`'s update, or none with None."""

    def __init__(self, conv: nn.Conv2d, num_streams: int, *, background_branch: int | None = None):
        super().__init__()
        self.conv = conv
        self.num_streams = num_streams
        self.background_branch = background_branch
        self.weight_update = nn.Parameter(torch.zeros(BRANCHES, *conv.weight.shape))
        self.bias_update = nn.Parameter(torch.zeros(BRANCHES, conv.out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grouped = x.unflatten(0, (-1, self.num_streams))
        branches = stream_branches(self.num_streams, self.background_branch)
        outputs = []
        for stream in range(self.num_streams):
            weight, bias = self.conv.weight, self.conv.bias
            if stream < len(branches):
                branch = branches[stream]
                weight = weight + self.weight_update[branch].to(weight.dtype)
                bias = bias + self.bias_update[branch].to(bias.dtype)
            outputs.append(F.conv2d(grouped[:, stream], weight, bias, self.conv.stride, self.conv.padding))
        return torch.stack(outputs, dim=1).flatten(0, 1)
