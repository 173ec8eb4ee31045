"""BCM: the background stream reaches the global branch through the self-attention keys and values."""

import pytest
import torch

from dualanodiff.model.bcm import BackgroundCompensation
from dualanodiff.model.config import DualConfig
from dualanodiff.model.dual import DualAnoDiffModel


def _model(base, **settings) -> DualAnoDiffModel:
    model = DualAnoDiffModel(base, DualConfig(rank=4, saim_init="default", **settings))
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("lora.q.up", "lora.k.up", "lora.v.up", "lora.out.up")):
                param.copy_(torch.randn(param.shape, generator=generator) * 0.05)
    return model


def _bcm_modules(model: DualAnoDiffModel) -> list[BackgroundCompensation]:
    return [p.bcm for p in model.unet.attn_processors.values() if p.bcm is not None]


def _predict(model: DualAnoDiffModel, latents: torch.Tensor) -> torch.Tensor:
    groups, streams = latents.shape[:2]
    timesteps = torch.full((groups * streams,), 400)
    with torch.no_grad():
        out = model.predict(latents.flatten(0, 1), timesteps, model.text_embeddings(groups))
    return out.view(groups, streams, *out.shape[1:])


def _latents(model: DualAnoDiffModel, seed: int = 0) -> torch.Tensor:
    side = model.unet.config.sample_size
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(2, 3, model.unet.config.in_channels, side, side, generator=generator)


def test_forms_and_their_initial_weights():
    assert BackgroundCompensation(8, "additive").weight.item() == pytest.approx(0.1)
    assert BackgroundCompensation(8, "gated").weight.item() == 0.0
    with pytest.raises(ValueError):
        BackgroundCompensation(8, "other")


def test_bcm_sits_on_self_attention_only(make_micro_base):
    model = _model(make_micro_base(), bcm=True)
    for name, processor in model.unet.attn_processors.items():
        assert (processor.bcm is not None) == name.endswith("attn1.processor")


@pytest.mark.parametrize("form", ["additive", "gated"])
def test_with_zero_weight_bcm_changes_nothing(make_micro_base, form):
    with_bcm = _model(make_micro_base(), bcm=True, bcm_form=form)
    without = _model(make_micro_base())
    without.load_adapter_state_dict({k: v for k, v in with_bcm.adapter_state_dict().items() if ".bcm." not in k})
    for bcm in _bcm_modules(with_bcm):
        bcm.weight.data.zero_()
    latents = _latents(with_bcm)
    assert torch.allclose(_predict(with_bcm, latents)[:, :2], _predict(without, latents[:, :2]), atol=1e-5)


def test_gradients_reach_the_mlp_and_the_weight(make_micro_base):
    model = _model(make_micro_base(), bcm=True)
    clean = _latents(model)
    loss, _ = model(clean, torch.randn_like(clean), torch.tensor([200, 800]))
    loss.backward()
    for bcm in _bcm_modules(model):
        assert bcm.weight.grad is not None and bcm.weight.grad.abs() > 0
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in bcm.mlp.parameters())


def test_another_background_changes_the_global_branch_only_through_bcm(make_micro_base):
    model = _model(make_micro_base(), bcm=True, saim=False)
    latents = _latents(model)
    other = latents.clone()
    other[:, 2] = torch.randn_like(other[:, 2])  # new backgrounds
    before, after = _predict(model, latents), _predict(model, other)
    assert (after[:, 0] - before[:, 0]).abs().max() > 1e-4  # global branch: conditioned on the background
    assert torch.equal(after[:, 1], before[:, 1])  # anomaly branch: never sees it (SAIM off here)
