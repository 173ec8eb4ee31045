"""The dual-branch attention processor: per-branch LoRA, SAIM and BCM plugged into diffusers' attention API.

diffusers lets a model swap the code that runs inside each `Attention` layer (`unet.set_attn_processor`). Our
processor runs the frozen projections once over the whole interleaved batch, adds each branch's LoRA update, lets the
two branches exchange information through SAIM after the attention, and, with BCM, mixes the background stream into
the global branch's self-attention keys and values. The UNet's code and weights stay diffusers' own.

Batch layout: ((b f), n, c) with f streams per sample group: 0 = global branch (whole image), 1 = anomaly branch
(anomaly part), 2 = background (only with BCM).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention
from torch import nn

from dualanodiff.model.bcm import BackgroundCompensation
from dualanodiff.model.config import BCMForm
from dualanodiff.model.lora import BranchLoRA
from dualanodiff.model.saim import SAIM
from dualanodiff.model.streams import ANOMALY, BACKGROUND, BRANCHES, GLOBAL


class AttentionStore:
    """Sums the anomaly branch's cross-attention to the anomaly token(s) over layers and steps.

    This is the paper's second mask route: where the anomaly branch looks at "sks" is where the anomaly is.
    """

    def __init__(self, token_indices: list[int], size: int):
        self.token_indices = token_indices
        self.size = size
        self.total: torch.Tensor | None = None
        self.count = 0

    def add(self, probabilities: torch.Tensor) -> None:
        """`probabilities`: (b, heads, n, tokens) of the anomaly-branch rows; n must be a square number."""
        maps = probabilities[..., self.token_indices].sum(-1).mean(1).float()  # (b, n)
        side = math.isqrt(maps.shape[1])
        maps = F.interpolate(maps.view(-1, 1, side, side), size=(self.size, self.size), mode="bilinear",
                             align_corners=False)[:, 0]
        self.total = maps if self.total is None else self.total + maps
        self.count += 1

    def maps(self) -> torch.Tensor:
        """The mean map per sample, (b, size, size), scaled to 0..1 per sample."""
        if self.total is None:
            raise RuntimeError("no cross-attention was recorded")
        mean = self.total / self.count
        low = mean.amin(dim=(1, 2), keepdim=True)
        high = mean.amax(dim=(1, 2), keepdim=True)
        return (mean - low) / (high - low).clamp_min(1e-12)


def per_stream_matmul(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(b, f, n, in) @ (f, in, out) -> (b, f, n, out): stream s of every group times its own weights[s].

    Either way one operand gets copied: broadcasting copies the weights once per group, einsum regroups the
    activations by stream. Copy the smaller one: with few tokens (deep levels, text keys and values) the weight copies
    cost up to 2.6 times the product itself (SD 1.5's 8 x 8 level, CPU), with many tokens the activation copies do.
    """
    tokens, (inputs, outputs) = x.shape[2], weights.shape[1:]
    if tokens * (inputs + outputs) < inputs * outputs:
        return torch.einsum("bfni,fio->bfno", x, weights)
    return x @ weights


@dataclass
class DualContext:
    """What the processors need to know about one UNet call; passed as `cross_attention_kwargs={"dual": ...}`."""

    num_streams: int = BRANCHES
    attention_store: AttentionStore | None = field(default=None)


class DualBranchAttnProcessor(nn.Module):
    """Attention with per-branch LoRA on to_q, to_k, to_v, to_out.0, then SAIM; BCM on self-attention."""

    def __init__(self, attn: Attention, rank: int, *, saim: bool, saim_zero_init: bool = True,
                 bcm_form: BCMForm | None = None, lora_alpha: float | None = None,
                 background_branch: int | None = None):
        super().__init__()
        query_dim, inner_dim = attn.to_q.in_features, attn.to_q.out_features
        context_dim, out_dim = attn.to_k.in_features, attn.to_out[0].out_features
        shapes = {"q": (query_dim, inner_dim), "k": (context_dim, inner_dim),
                  "v": (context_dim, attn.to_v.out_features), "out": (inner_dim, out_dim)}
        self.lora = nn.ModuleDict({name: BranchLoRA(*shape, rank, alpha=lora_alpha, background_branch=background_branch)
                                   for name, shape in shapes.items()})
        self.saim = SAIM(out_dim, zero_init=saim_zero_init) if saim else None
        self.bcm = (BackgroundCompensation(query_dim, bcm_form)
                    if bcm_form is not None and not attn.is_cross_attention else None)
        self.fused: dict[str, torch.Tensor] | None = None  # see `fuse`

    @staticmethod
    def _projections(attn: Attention) -> dict[str, nn.Linear]:
        return {"q": attn.to_q, "k": attn.to_k, "v": attn.to_v, "out": attn.to_out[0]}

    def fuse(self, attn: Attention, num_streams: int) -> None:
        """Fold each branch's LoRA into per-stream copies of the frozen projections; for generation only, once the
        adapters are fixed (the fused weights are not trained and not saved)."""
        self.fused = {name: self.lora[name].fused_weight(linear.weight.detach(), num_streams)
                      for name, linear in self._projections(attn).items()}

    def _project(self, name: str, linear: nn.Linear, x: torch.Tensor, streams: int) -> torch.Tensor:
        if self.fused is None:
            return linear(x) + self.lora[name](x, streams)
        weight = self.fused[name]
        if weight.shape[0] != streams:
            raise RuntimeError(f"the adapters were fused for {weight.shape[0]} streams, this batch has {streams}")
        out = per_stream_matmul(x.view(-1, streams, *x.shape[1:]), weight)
        if linear.bias is not None:
            out = out + linear.bias
        return out.reshape(*x.shape[:2], -1)

    def _self_key_value_input(self, hidden_states: torch.Tensor, num_streams: int) -> torch.Tensor:
        if self.bcm is None or num_streams <= BACKGROUND:
            return hidden_states
        grouped = hidden_states.view(-1, num_streams, *hidden_states.shape[1:])
        compensated = self.bcm(grouped[:, GLOBAL], grouped[:, BACKGROUND])
        return torch.cat([compensated[:, None], grouped[:, 1:]], dim=1).view_as(hidden_states)

    def __call__(self, attn: Attention, hidden_states: torch.Tensor,
                 encoder_hidden_states: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                 temb: torch.Tensor | None = None, dual: DualContext | None = None) -> torch.Tensor:
        if dual is None:
            raise RuntimeError("the dual-branch UNet needs cross_attention_kwargs={'dual': DualContext(...)}")
        if hidden_states.ndim != 3 or attn.group_norm is not None or attn.spatial_norm is not None:
            raise NotImplementedError("DualBranchAttnProcessor serves transformer-block attention only")
        streams = dual.num_streams
        batch, tokens, _ = hidden_states.shape
        if encoder_hidden_states is None:
            context = self._self_key_value_input(hidden_states, streams)
        else:
            context = (attn.norm_encoder_hidden_states(encoder_hidden_states) if attn.norm_cross
                       else encoder_hidden_states)

        query = self._project("q", attn.to_q, hidden_states, streams)
        key = self._project("k", attn.to_k, context, streams)
        value = self._project("v", attn.to_v, context, streams)
        head_dim = key.shape[-1] // attn.heads
        query, key, value = (x.view(batch, -1, attn.heads, head_dim).transpose(1, 2) for x in (query, key, value))
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, context.shape[1], batch)
            attention_mask = attention_mask.view(batch, attn.heads, -1, attention_mask.shape[-1])

        if dual.attention_store is not None and encoder_hidden_states is not None:
            anomaly_rows = slice(ANOMALY, None, streams)
            scores = query[anomaly_rows] @ key[anomaly_rows].transpose(-1, -2) * attn.scale
            dual.attention_store.add(scores.softmax(dim=-1))

        hidden = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, scale=attn.scale)
        hidden = hidden.transpose(1, 2).reshape(batch, tokens, -1).to(query.dtype)
        hidden = self._project("out", attn.to_out[0], hidden, streams)
        hidden = attn.to_out[1](hidden)
        if self.saim is not None:
            hidden = self.saim(hidden, streams)
        if attn.residual_connection:
            hidden = hidden + hidden_states
        return hidden / attn.rescale_output_factor


def install_dual_processors(unet: nn.Module, rank: int, *, saim: bool, saim_zero_init: bool = True,
                            bcm_form: BCMForm | None = None, lora_alpha: float | None = None,
                            background_branch: int | None = None) -> dict[str, DualBranchAttnProcessor]:
    """Replace every attention processor of `unet` by a dual-branch one; returns them by name."""
    processors = {
        name: DualBranchAttnProcessor(unet.get_submodule(name.removesuffix(".processor")), rank, saim=saim,
                                      saim_zero_init=saim_zero_init, bcm_form=bcm_form, lora_alpha=lora_alpha,
                                      background_branch=background_branch)
        for name in unet.attn_processors
    }
    unet.set_attn_processor(processors)
    return processors
