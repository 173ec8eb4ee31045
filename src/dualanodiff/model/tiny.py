"""The tiny preset's base model, built from configs alone: nothing is downloaded.

- Latent space: space-to-depth by 4 (64 px images -> 16 x 16 x 48 latents): exact and free.
- Text encoder: a small CLIP text transformer with a byte-level BPE vocabulary made here, in which the default
  prompt words are single tokens and any other word falls back to bytes. It stays at its random initialisation:
  the dual fine-tuning's text-encoder LoRA and the UNet's cross-attention learn what the tokens mean.
- UNet: a small UNet2DConditionModel with cross-attention at 16 x 16 and 8 x 8, so that SAIM and the per-branch LoRA
  act at every resolution that has attention, as in Stable Diffusion.
- Schedule: cosine noise schedule, and the UNet predicts the clean sample (x0). Measured here on the synthetic
  washer (2000 steps of batch 16): with v-prediction the samples had the object's shape but every pixel kept grain
  of the starting noise, which a model this small does not learn to remove in minutes; with x0-prediction the same
  budget gives clean, smooth images.

`training/tiny_base.py` then trains the UNet on the object's normal images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import UNet2DConditionModel
from tokenizers.pre_tokenizers import ByteLevel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from dualanodiff.model.base import BaseModel, LatentCodec, SpaceToDepthCodec

TINY_RESOLUTION = 64
MAX_PROMPT_TOKENS = 16
# Words of the default prompts (and of common alternatives) become single tokens; others are spelled in bytes.
TOKEN_WORDS = ("a", "an", "the", "with", "of", "vfx", "sks", "object", "defect", "anomaly")


@dataclass(frozen=True)
class TinyArchitecture:
    """The shape of a tiny base; the default is the tiny preset's (tests build smaller ones)."""

    space_to_depth: int = 4
    block_out_channels: tuple[int, ...] = (64, 128, 128)
    attention_levels: int = 2  # cross-attention in the first (highest-resolution) levels
    heads: int = 4
    norm_groups: int = 32
    text_width: int = 64
    text_layers: int = 2


SCHEDULER_CONFIG = {
    "_class_name": "DDPMScheduler",
    "num_train_timesteps": 1000,
    "beta_schedule": "squaredcos_cap_v2",
    "prediction_type": "sample",
    "clip_sample": False,
}


def build_tokenizer(words: tuple[str, ...] = TOKEN_WORDS) -> CLIPTokenizer:
    """A CLIP byte-level BPE tokenizer whose merges spell exactly `words` as single tokens."""
    bos, eos = "<|startoftext|>", "<|endoftext|>"
    symbols = sorted(ByteLevel.alphabet())  # the 256 byte symbols of byte-level BPE
    vocab = symbols + [symbol + "</w>" for symbol in symbols]
    merges: list[tuple[str, str]] = []
    for word in words:
        pieces = [*word[:-1], word[-1] + "</w>"]
        while len(pieces) > 1:
            merges.append((pieces[0], pieces[1]))
            pieces = [pieces[0] + pieces[1], *pieces[2:]]
            if pieces[0] not in vocab:
                vocab.append(pieces[0])
    vocab += [bos, eos]
    return CLIPTokenizer(vocab={token: i for i, token in enumerate(vocab)}, merges=merges,
                         model_max_length=MAX_PROMPT_TOKENS)


def build_text_encoder(tokenizer: CLIPTokenizer, architecture: TinyArchitecture, seed: int = 0) -> CLIPTextModel:
    width = architecture.text_width
    config = CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=width, intermediate_size=2 * width,
                            num_hidden_layers=architecture.text_layers, num_attention_heads=2,
                            max_position_embeddings=MAX_PROMPT_TOKENS,
                            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                            pad_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CLIPTextModel(config).eval()


def build_unet(resolution: int, architecture: TinyArchitecture, seed: int = 0) -> UNet2DConditionModel:
    channels = 3 * architecture.space_to_depth**2
    levels = len(architecture.block_out_channels)
    plain = levels - architecture.attention_levels
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return UNet2DConditionModel(
            sample_size=resolution // architecture.space_to_depth,
            in_channels=channels,
            out_channels=channels,
            block_out_channels=architecture.block_out_channels,
            down_block_types=("CrossAttnDownBlock2D",) * architecture.attention_levels + ("DownBlock2D",) * plain,
            up_block_types=("UpBlock2D",) * plain + ("CrossAttnUpBlock2D",) * architecture.attention_levels,
            layers_per_block=1,
            attention_head_dim=architecture.heads,
            cross_attention_dim=architecture.text_width,
            norm_num_groups=architecture.norm_groups,
        )


def build_tiny_base(resolution: int = TINY_RESOLUTION, seed: int = 0,
                    architecture: TinyArchitecture = TinyArchitecture()) -> BaseModel:
    """An untrained tiny base model; `training.tiny_base.pretrain_tiny_base` teaches it the object."""
    multiple = architecture.space_to_depth * 2 ** (len(architecture.block_out_channels) - 1)
    if resolution % multiple:
        raise ValueError(f"tiny preset resolution must be a multiple of {multiple}, got {resolution}")
    tokenizer = build_tokenizer()
    return BaseModel(unet=build_unet(resolution, architecture, seed),
                     codec=LatentCodec(SpaceToDepthCodec(architecture.space_to_depth)),
                     text_encoder=build_text_encoder(tokenizer, architecture, seed), tokenizer=tokenizer,
                     scheduler_config=dict(SCHEDULER_CONFIG), name="tiny")
