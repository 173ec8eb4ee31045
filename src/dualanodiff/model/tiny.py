"""The tiny preset's base model, built from configs alone: nothing is downloaded.

- Latent space: space-to-depth by 4 (64 px images -> 16 x 16 x 48 latents): exact and free.
- Text encoder: a small CLIP text transformer with a byte-level BPE vocabulary made here, in which the default
  prompt words are single tokens and any other word falls back to bytes. It stays at its random initialisation:
  the dual fine-tuning's text-encoder LoRA and the UNet's cross-attention learn what the tokens mean.
- UNet: a small UNet2DConditionModel with cross-attention at 16 x 16 and 8 x 8, so that SAIM and the per-branch LoRA
  act at every resolution that has attention, as in Stable Diffusion.
- Schedule: cosine noise schedule with v-prediction, which trains faster than epsilon-prediction on small pixel-
  space images (and keeps the last step's SNR near zero).

`pretrain.py` then trains the UNet on the object's normal images.
"""

from __future__ import annotations

import torch
from diffusers import UNet2DConditionModel
from tokenizers.pre_tokenizers import ByteLevel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from dualanodiff.model.base import BaseModel, LatentCodec, SpaceToDepthCodec

TINY_RESOLUTION = 64
SPACE_TO_DEPTH = 4
TEXT_WIDTH = 64
MAX_PROMPT_TOKENS = 16
# Words of the default prompts (and of common alternatives) become single tokens; others are spelled in bytes.
TOKEN_WORDS = ("a", "an", "the", "with", "of", "vfx", "sks", "object", "defect", "anomaly")
SCHEDULER_CONFIG = {
    "_class_name": "DDPMScheduler",
    "num_train_timesteps": 1000,
    "beta_schedule": "squaredcos_cap_v2",
    "prediction_type": "v_prediction",
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


def build_text_encoder(tokenizer: CLIPTokenizer, seed: int = 0) -> CLIPTextModel:
    config = CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=TEXT_WIDTH, intermediate_size=2 * TEXT_WIDTH,
                            num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=MAX_PROMPT_TOKENS,
                            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                            pad_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CLIPTextModel(config).eval()


def build_unet(resolution: int = TINY_RESOLUTION, seed: int = 0) -> UNet2DConditionModel:
    channels = 3 * SPACE_TO_DEPTH**2
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return UNet2DConditionModel(
            sample_size=resolution // SPACE_TO_DEPTH,
            in_channels=channels,
            out_channels=channels,
            block_out_channels=(96, 192, 192),
            down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            layers_per_block=1,
            attention_head_dim=4,
            cross_attention_dim=TEXT_WIDTH,
            norm_num_groups=32,
        )


def build_tiny_base(resolution: int = TINY_RESOLUTION, seed: int = 0) -> BaseModel:
    """An untrained tiny base model; `pretrain.pretrain_base` makes it draw the object."""
    if resolution % (SPACE_TO_DEPTH * 4):
        raise ValueError(f"tiny preset resolution must be a multiple of {SPACE_TO_DEPTH * 4}, got {resolution}")
    tokenizer = build_tokenizer()
    return BaseModel(unet=build_unet(resolution, seed), codec=LatentCodec(SpaceToDepthCodec(SPACE_TO_DEPTH)),
                     text_encoder=build_text_encoder(tokenizer, seed), tokenizer=tokenizer,
                     scheduler_config=dict(SCHEDULER_CONFIG), name="tiny")
