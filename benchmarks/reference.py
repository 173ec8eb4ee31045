"""The per-branch-loop reference: the dual-branch attention written the way the released code writes it.

The released code splits the interleaved batch ((b f), n, c) into its f streams, runs each stream separately through
the frozen projections plus that branch's own LoRA and through attention, puts the streams back together, and runs
SAIM over rearranged copies of the whole batch. `LoopDualAttnProcessor` does exactly that with the parameters of one
of our `DualBranchAttnProcessor`s, so the two compute the same function with the same weights and can be timed side
by side on one UNet (`ProcessorSwitch`). It lives here, not in the package: it is the thing we measure against.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention
from torch import nn

from dualanodiff.model.attention import DualBranchAttnProcessor, DualContext
from dualanodiff.model.lora import BranchLoRA
from dualanodiff.model.saim import SAIM


def _branch_linear(linear: nn.Linear, lora: BranchLoRA, branch: int, x: torch.Tensor) -> torch.Tensor:
    """One branch's projection: the frozen layer plus that branch's own low-rank update."""
    return linear(x) + (x @ lora.down[branch].to(x.dtype)) @ lora.up[branch].to(x.dtype) * lora.scale


def _loop_saim(saim: SAIM, hidden: torch.Tensor, num_streams: int) -> torch.Tensor:
    """SAIM as the released code writes it: rearranged copies of the whole batch, one head of SDPA."""
    tokens, channels = hidden.shape[1:]
    x = saim.proj_in(saim.norm(hidden))
    x = x.view(-1, num_streams, tokens, channels).permute(0, 2, 1, 3).reshape(-1, num_streams, channels)
    x = F.scaled_dot_product_attention(saim.to_q(x), saim.to_k(x), saim.to_v(x))
    x = saim.proj_out(x).view(-1, tokens, num_streams, channels).permute(0, 2, 1, 3).reshape_as(hidden)
    return hidden + x


class LoopDualAttnProcessor(nn.Module):
    """A per-branch loop over the parameters of `dual` (its LoRA and SAIM are this module's too)."""

    def __init__(self, dual: DualBranchAttnProcessor):
        super().__init__()
        if dual.bcm is not None:
            raise NotImplementedError("the per-branch-loop reference covers the two-branch model (no BCM)")
        self.dual = dual

    def __call__(self, attn: Attention, hidden_states: torch.Tensor,
                 encoder_hidden_states: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                 temb: torch.Tensor | None = None, dual: DualContext | None = None) -> torch.Tensor:
        if dual is None or dual.num_streams != 2:
            raise NotImplementedError("the per-branch-loop reference serves two streams per group")
        if attention_mask is not None or dual.attention_store is not None:
            raise NotImplementedError("the per-branch-loop reference takes no attention mask or store")
        streams = dual.num_streams
        tokens = hidden_states.shape[1]
        lora = self.dual.lora
        # (b f) n c -> f b n c: one tensor per stream.
        per_stream = hidden_states.view(-1, streams, tokens, hidden_states.shape[-1]).transpose(0, 1)
        if encoder_hidden_states is not None:
            context = attn.norm_encoder_hidden_states(encoder_hidden_states) if attn.norm_cross \
                else encoder_hidden_states
            contexts = context.view(-1, streams, *context.shape[1:]).transpose(0, 1)
        else:
            contexts = per_stream
        outputs = []
        for branch in range(streams):
            x, context = per_stream[branch], contexts[branch]
            batch = x.shape[0]
            query = _branch_linear(attn.to_q, lora["q"], branch, x)
            key = _branch_linear(attn.to_k, lora["k"], branch, context)
            value = _branch_linear(attn.to_v, lora["v"], branch, context)
            head_dim = key.shape[-1] // attn.heads
            query, key, value = (t.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
                                 for t in (query, key, value))
            out = F.scaled_dot_product_attention(query, key, value, scale=attn.scale)
            out = out.transpose(1, 2).reshape(batch, tokens, -1).to(query.dtype)
            out = attn.to_out[1](_branch_linear(attn.to_out[0], lora["out"], branch, out))
            outputs.append(out)
        hidden = torch.stack(outputs, dim=1).flatten(0, 1)  # f b n c -> (b f) n c
        if self.dual.saim is not None:
            hidden = _loop_saim(self.dual.saim, hidden, streams)
        if attn.residual_connection:
            hidden = hidden + hidden_states
        return hidden / attn.rescale_output_factor


class ProcessorSwitch:
    """Swaps one UNet between our batched dual-branch processors and the per-branch-loop reference."""

    def __init__(self, unet: nn.Module):
        self.unet = unet
        self.batched = dict(unet.attn_processors)
        if not all(isinstance(p, DualBranchAttnProcessor) for p in self.batched.values()):
            raise ValueError("the UNet must carry DualBranchAttnProcessors (build a DualAnoDiffModel first)")
        self.looped = {name: LoopDualAttnProcessor(p) for name, p in self.batched.items()}

    # set_attn_processor empties the dict it is given: hand it copies.
    def use_batched(self) -> None:
        self.unet.set_attn_processor(dict(self.batched))

    def use_loop(self) -> None:
        self.unet.set_attn_processor(dict(self.looped))
