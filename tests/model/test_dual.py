"""The dual-branch UNet: equal to the base at initialisation, SAIM couples the branches, LoRA is per branch."""

import copy

import pytest
import torch

from dualanodiff.errors import ModelError
from dualanodiff.model.config import DualConfig
from dualanodiff.model.dual import DualAnoDiffModel


def _inputs(model: DualAnoDiffModel, groups: int = 2, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    streams = model.config.num_streams
    side = model.unet.config.sample_size
    latents = torch.randn(groups * streams, model.unet.config.in_channels, side, side, generator=generator)
    timesteps = torch.full((groups * streams,), 500)
    return latents, timesteps, model.text_embeddings(groups)


def _randomise_adapters(model: DualAnoDiffModel, seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.requires_grad and ("lora" in name or "saim.proj_out" in name):
                param.copy_(torch.randn(param.shape, generator=generator) * 0.05)


def test_initial_dual_model_equals_the_base_unet(micro_base):
    base_unet = copy.deepcopy(micro_base.unet)
    model = DualAnoDiffModel(micro_base, DualConfig(rank=4))
    latents, timesteps, text = _inputs(model)
    with torch.no_grad():
        expected = base_unet(latents, timesteps, encoder_hidden_states=text).sample
        actual = model.predict(latents, timesteps, text)
    assert torch.allclose(actual, expected, atol=1e-5)


@pytest.mark.parametrize("saim", [True, False])
def test_saim_is_what_lets_the_anomaly_branch_change_the_global_branch(micro_base, saim):
    model = DualAnoDiffModel(micro_base, DualConfig(rank=4, saim=saim, saim_init="default"))
    _randomise_adapters(model)
    latents, timesteps, text = _inputs(model)
    changed = latents.clone()
    changed[1] += torch.randn_like(changed[1])  # pair 0's anomaly branch
    with torch.no_grad():
        before, after = model.predict(latents, timesteps, text), model.predict(changed, timesteps, text)
    global_moved = (after[0] - before[0]).abs().max()
    assert (global_moved > 1e-4) if saim else (global_moved == 0)
    assert torch.equal(after[2:], before[2:])  # the other pair never sees it


def test_branch_adapters_are_distinct_and_both_learn(micro_base):
    model = DualAnoDiffModel(micro_base, DualConfig(rank=4))
    _randomise_adapters(model)
    side = model.unet.config.sample_size
    clean = torch.randn(2, 2, model.unet.config.in_channels, side, side)
    loss, branch_losses = model(clean, torch.randn_like(clean), torch.tensor([100, 700]))
    loss.backward()
    assert branch_losses.shape == (2,)
    processor = model.unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1.processor
    for projection in ("q", "k", "v", "out"):
        grad = processor.lora[projection].up.grad
        assert grad[0].abs().sum() > 0 and grad[1].abs().sum() > 0
    text_grads = [p.grad for n, p in model.text_encoder.named_parameters() if "lora_B" in n]
    assert text_grads and all(g is not None and g.abs().sum() > 0 for g in text_grads)
    frozen = [p for n, p in model.unet.named_parameters() if "processor" not in n]
    assert all(p.grad is None for p in frozen)


def test_adapter_state_round_trip_and_mismatch(micro_base):
    model = DualAnoDiffModel(micro_base, DualConfig(rank=4))
    _randomise_adapters(model)
    state = {name: value.clone() for name, value in model.adapter_state_dict().items()}
    assert not any(name.startswith(("unet.conv", "codec")) for name in state)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.zero_()
    model.load_adapter_state_dict(state)
    assert all(torch.equal(model.adapter_state_dict()[name], value) for name, value in state.items())
    with pytest.raises(ModelError, match="do not fit"):
        model.load_adapter_state_dict({name: value for name, value in list(state.items())[1:]})


def test_prompts_follow_the_tokens(micro_base):
    model = DualAnoDiffModel(micro_base, DualConfig(rank=4, object_token="vfx", anomaly_token="sks", bcm=True))
    assert model.stream_prompts() == ["a vfx with sks", "sks", "a vfx with sks"]
    assert model.stream_prompts(unconditional=True) == ["", "", ""]
    assert model.anomaly_token_indices() == [1]  # "sks" is one token of the tiny vocabulary


def test_fused_adapters_give_the_same_prediction(micro_base):
    model = DualAnoDiffModel(micro_base, DualConfig(rank=4, saim_init="default"))
    _randomise_adapters(model)
    latents, timesteps, text = _inputs(model)
    with torch.no_grad():
        expected = model.predict(latents, timesteps, text)
        model.fuse_adapters()
        fused = model.predict(latents, timesteps, text)
    assert torch.allclose(fused, expected, atol=1e-5)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_diffusion_target_follows_the_prediction_type(prediction_type):
    from diffusers import DDPMScheduler

    from dualanodiff.model.dual import diffusion_target

    scheduler = DDPMScheduler(prediction_type=prediction_type)
    clean, noise, timesteps = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4), torch.tensor([10, 900])
    target = diffusion_target(scheduler, clean, noise, timesteps)
    expected = {"epsilon": noise, "sample": clean,
                "v_prediction": scheduler.get_velocity(clean, noise, timesteps)}[prediction_type]
    assert torch.equal(target, expected)
    scheduler.register_to_config(prediction_type="flow")
    with pytest.raises(ModelError, match="unsupported prediction type"):
        diffusion_target(scheduler, clean, noise, timesteps)
