"""The per-branch output convolution: the base at the start, each branch's own update on its own streams, saved
and loaded with the other adapters, chosen by the preset."""

import copy

import pytest
import torch
from torch import nn

from dualanodiff.model.config import DualConfig
from dualanodiff.model.dual import DualAnoDiffModel
from dualanodiff.model.output_head import BranchOutputConv
from dualanodiff.training.settings import TrainSettings


def _conv() -> nn.Conv2d:
    torch.manual_seed(0)
    return nn.Conv2d(6, 4, 3, padding=1)


def _randomised(head: BranchOutputConv) -> BranchOutputConv:
    with torch.no_grad():
        head.weight_update.normal_(0, 0.1)
        head.bias_update.normal_(0, 0.1)
    return head


@pytest.mark.parametrize("streams", [2, 3])
def test_a_new_head_is_the_base_convolution(streams):
    conv = _conv()
    head = BranchOutputConv(copy.deepcopy(conv), streams)
    x = torch.randn(2 * streams, 6, 5, 5)
    assert torch.allclose(head(x), conv(x), atol=1e-6)


@pytest.mark.parametrize(("background_branch", "background_weight"), [(0, "global"), (None, "frozen")])
def test_each_stream_gets_its_branch_update(background_branch, background_weight):
    conv = _conv()
    head = _randomised(BranchOutputConv(copy.deepcopy(conv), 3, background_branch=background_branch))
    x = torch.randn(2 * 3, 6, 5, 5)
    out = head(x).unflatten(0, (2, 3))
    weights = {branch: (conv.weight + head.weight_update[branch], conv.bias + head.bias_update[branch])
               for branch in (0, 1)}
    weights["frozen"] = (conv.weight, conv.bias)
    weights["global"] = weights[0]
    grouped = x.unflatten(0, (2, 3))
    for stream, key in enumerate((0, 1, background_weight)):
        expected = nn.functional.conv2d(grouped[:, stream], *weights[key], padding=1)
        assert torch.allclose(out[:, stream], expected, atol=1e-5)
    assert not torch.allclose(out[:, 0], out[:, 1], atol=1e-3)


def test_the_head_trains_per_branch_and_travels_with_the_adapters(micro_base, tmp_path):
    untouched = copy.deepcopy(micro_base)  # a model takes over its base's UNet
    model = DualAnoDiffModel(micro_base, DualConfig(rank=4, output_head=True))
    side = model.unet.config.sample_size
    clean = torch.randn(2, 2, model.unet.config.in_channels, side, side)
    loss, _ = model(clean, torch.randn_like(clean), torch.tensor([100, 700]))
    loss.backward()
    head = model.unet.conv_out
    assert isinstance(head, BranchOutputConv)
    assert head.weight_update.grad[0].abs().sum() > 0 and head.weight_update.grad[1].abs().sum() > 0
    assert head.conv.weight.grad is None  # the base's own convolution stays frozen
    with torch.no_grad():
        head.weight_update.normal_(0, 0.01)
    model.save_pretrained(tmp_path)
    loaded = DualAnoDiffModel.from_pretrained(tmp_path, untouched,
                                              DualConfig(rank=4, output_head=True))
    assert torch.equal(loaded.unet.conv_out.weight_update, head.weight_update)


def test_the_tiny_preset_has_the_head_and_sd15_does_not(tmp_path):
    def resolved(preset: str, **model) -> TrainSettings:
        return TrainSettings(data_root=str(tmp_path), object="washer", anomaly="rust", preset=preset,
                             resolution=64 if preset == "tiny" else None, model=DualConfig(**model)).resolved()

    assert resolved("tiny").model.output_head is True
    assert resolved("sd15").model.output_head is False
    assert resolved("tiny", output_head=False).model.output_head is False


def test_a_run_from_before_the_option_loads_without_the_head(synthetic_root, micro_base_dir, tmp_path):
    import json

    from dualanodiff.generation import DualAnoDiffPipeline
    from dualanodiff.training import Run, train
    from helpers import micro_settings

    run = train(micro_settings(synthetic_root, micro_base_dir, steps=1, model=DualConfig(output_head=False)),
                tmp_path / "run")
    config = json.loads((run.root / "config.json").read_text())
    del config["model"]["output_head"]
    (run.root / "config.json").write_text(json.dumps(config))
    assert Run.open(run.root).settings.model.output_head is False
    pipe = DualAnoDiffPipeline.from_pretrained(run.root)
    assert not isinstance(pipe.model.unet.conv_out, BranchOutputConv)
