"""Loading a base model: diffusers folders (with a VAE, as Stable Diffusion), tiny bases, and bad inputs."""

import pytest
import torch
from diffusers import UNet2DConditionModel

from dualanodiff.errors import ModelError
from dualanodiff.model.base import load_base_model
from sd_like import save_sd_like


@pytest.fixture
def sd_like_dir(tmp_path):
    """A Stable-Diffusion-1.x-shaped folder (AutoencoderKL, 4 latent channels), tiny enough to build here."""
    return save_sd_like(tmp_path / "sd-like", "sd1")


def test_a_diffusers_folder_with_a_vae_loads(sd_like_dir):
    base = load_base_model(sd_like_dir)
    assert base.codec.is_vae and base.codec.downscale == 2 and base.resolution == 16
    assert base.prediction_type == "epsilon"
    pixels = torch.rand(1, 3, 16, 16) * 2 - 1
    mean, std = base.codec.encode_distribution(pixels)
    assert mean.shape == (1, 4, 8, 8) and (std > 0).all()
    assert base.codec.decode(mean).shape == (1, 3, 16, 16)


def test_an_sd2_like_folder_keeps_its_v_prediction_and_attention_layout(tmp_path):
    base = load_base_model(save_sd_like(tmp_path / "sd2", "sd2"))
    assert base.prediction_type == "v_prediction" and base.scheduler_config["_class_name"] == "DDIMScheduler"
    assert base.codec.downscale == 4 and base.resolution == 32
    config = base.unet.config
    assert config.use_linear_projection and config.upcast_attention and list(config.attention_head_dim) == [2, 4]
    assert base.text_encoder.config.hidden_size == config.cross_attention_dim == 64


def test_a_tiny_base_round_trips(micro_base_dir, micro_base):
    base = load_base_model(micro_base_dir)
    assert not base.codec.is_vae and base.resolution == 16 and base.prediction_type == "sample"
    pixels = torch.rand(2, 3, 16, 16) * 2 - 1
    assert torch.equal(base.codec.decode(base.codec.encode(pixels)), pixels)  # space-to-depth is exact
    latents, text = torch.randn(2, 12, 8, 8), torch.randn(2, 16, 32)
    with torch.no_grad():
        assert torch.allclose(base.unet(latents, 10, text).sample, micro_base.unet(latents, 10, text).sample)
    assert base.tokenizer("a vfx with sks").input_ids == micro_base.tokenizer("a vfx with sks").input_ids


def test_pickled_weights_are_refused(sd_like_dir):
    unet = UNet2DConditionModel.from_pretrained(sd_like_dir, subfolder="unet")
    for file in (sd_like_dir / "unet").glob("*.safetensors"):
        file.unlink()
    unet.save_pretrained(sd_like_dir / "unet", safe_serialization=False)  # a .bin pickle only
    with pytest.raises(ModelError, match="safetensors"):
        load_base_model(sd_like_dir)


def test_bad_base_model_arguments(tmp_path, monkeypatch):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "unet").mkdir()
    with pytest.raises(ModelError, match=r"missing vae/, text_encoder/, tokenizer/, scheduler/"):
        load_base_model(tmp_path / "half")
    (tmp_path / "file.safetensors").write_bytes(b"x")
    with pytest.raises(ModelError, match="not a file"):
        load_base_model(tmp_path / "file.safetensors")
    with pytest.raises(ModelError, match="no such folder"):
        load_base_model(tmp_path / "missing")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    with pytest.raises(ModelError, match="huggingface-cli download someone/not-here"):
        load_base_model("someone/not-here")
