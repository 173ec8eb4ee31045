"""The tiny preset's base pre-training: it learns, it is cached by content, and the cache is reused."""

import pytest
import torch

import dualanodiff.training.tiny_base as pretrain
from dualanodiff.data import load_source
from dualanodiff.model.base import load_base_model
from dualanodiff.training.settings import TinyBaseSettings


def _pretrain(root, **settings):
    normals = load_source(root).normal_train("washer")[:8]
    values = {"resolution": 32, "steps": 3, "batch_size": 2, "lr": 1e-3, "seed": 0, "prompt": "a vfx",
              "flip_horizontal": True, "flip_vertical": True, **settings}
    return pretrain.cached_tiny_base(normals, "washer", TinyBaseSettings(**values))


def test_pretraining_is_cached_by_content_and_settings(synthetic_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DUALANODIFF_CACHE", str(tmp_path / "cache"))
    model_dir = _pretrain(synthetic_root)
    assert model_dir.parent.parent == tmp_path / "cache" / "tiny-base"
    assert (model_dir.parent / "loss.png").is_file() and not (model_dir.parent / "checkpoints").exists()
    base = load_base_model(model_dir)
    untrained = pretrain.build_tiny_base(32, seed=0)
    assert not torch.equal(base.unet.conv_in.weight, untrained.unet.conv_in.weight)

    def refuse(*args, **kwargs):
        raise AssertionError("the cached base should have been reused")

    monkeypatch.setattr(pretrain, "pretrain_tiny_base", refuse)
    assert _pretrain(synthetic_root) == model_dir
    assert "using the cached tiny base" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="reused"):
        _pretrain(synthetic_root, steps=4)  # other settings: another cache entry


def test_the_denoising_loss_predicts_the_clean_sample(micro_base):
    loss_model = pretrain.BaseDenoisingLoss(micro_base, "a vfx")
    clean = torch.randn(2, 12, 8, 8)
    loss, parts = loss_model(clean, torch.randn_like(clean), torch.tensor([10, 900]), torch.tensor([False, True]))
    assert loss.ndim == 0 and loss > 0 and parts.shape == (1,)
    assert not torch.equal(loss_model.prompt_embeddings[0], loss_model.prompt_embeddings[1])
