"""The benchmarks: the per-branch-loop reference computes what our batched processors compute, and both benchmark
scripts run end to end (micro settings) and write the figures they print as JSON."""

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root, home of benchmarks/

from benchmarks import generate, localization, train_step
from benchmarks.harness import randomise_adapters
from benchmarks.reference import ProcessorSwitch

from dualanodiff.model.attention import per_stream_matmul
from dualanodiff.model.config import DualConfig
from dualanodiff.model.dual import DualAnoDiffModel


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _loss_and_gradients(model: DualAnoDiffModel, batch, adapters: dict[str, torch.nn.Parameter]):
    model.zero_grad(set_to_none=True)
    loss, _ = model(*batch)
    loss.backward()
    return loss.detach(), {name: param.grad.clone() for name, param in adapters.items()}


def test_the_per_branch_loop_reference_equals_the_batched_model(micro_base):
    model = DualAnoDiffModel(micro_base, DualConfig(rank=4, saim_init="default"))
    randomise_adapters(model, seed=3)
    generator = torch.Generator().manual_seed(0)
    shape = (3, 2, micro_base.unet.config.in_channels, 8, 8)
    batch = (torch.randn(shape, generator=generator), torch.randn(shape, generator=generator),
             torch.tensor([10, 500, 990]))
    # Named before the switch: the reference holds the same parameters under other names.
    adapters = {name: param for name, param in model.named_parameters() if param.requires_grad}
    switch = ProcessorSwitch(model.unet)
    batched_loss, batched_grads = _loss_and_gradients(model, batch, adapters)
    switch.use_loop()
    assert all(type(p).__name__ == "LoopDualAttnProcessor" for p in model.unet.attn_processors.values())
    loop_loss, loop_grads = _loss_and_gradients(model, batch, adapters)
    assert torch.allclose(loop_loss, batched_loss, rtol=1e-5)
    # Every adapter (both branches' LoRA, SAIM, the text-encoder LoRA) gets the same gradient.
    assert len(adapters) > 50
    for name, grad in batched_grads.items():
        assert grad.abs().sum() > 0, name
        assert torch.allclose(loop_grads[name], grad, rtol=1e-4, atol=1e-6), name
    switch.use_batched()
    assert torch.equal(_loss_and_gradients(model, batch, adapters)[0], batched_loss)


@pytest.mark.parametrize("tokens", [4, 300])  # few tokens: the activations are regrouped; many: weights broadcast
def test_per_stream_products_use_each_streams_own_weights(tokens):
    x = torch.randn(3, 2, tokens, 16)
    weights = torch.randn(2, 16, 12)
    expected = torch.stack([x[:, stream] @ weights[stream] for stream in range(2)], dim=1)
    assert torch.allclose(per_stream_matmul(x, weights), expected, atol=1e-5)


MICRO = ["--tiny", "--device", "cpu", "--resolution", "16", "--repeats", "1", "--warmup", "1"]


def test_train_step_benchmark_prints_and_writes_its_figures(tmp_path, capsys, restore_threads):
    results = train_step.main([*MICRO, "--batch", "1", "--variants", "dual,loop,plain,bcm",
                               "--json", str(tmp_path / "train.json")])
    written = json.loads((tmp_path / "train.json").read_text())
    assert [row["variant"] for row in written["rows"]] == ["dual", "loop", "plain", "dual-bcm"]
    dual, loop, plain, bcm = (row["s/step"] for row in written["rows"])
    assert written["dual_vs_loop_speedup"] == pytest.approx(loop / dual)
    assert written["dual_vs_plain_ratio"] == pytest.approx(dual / plain)
    assert written["bcm_vs_dual_ratio"] == pytest.approx(bcm / dual)
    assert written["settings"]["batch_pairs"] == 1 and written["environment"]["threads"] == 1
    assert all(row["peak MiB"] > 0 for row in written["rows"])
    assert 0 < written["floor"]["floor_seconds"] < dual
    assert written["table"] == results["table"] and "| dual " in capsys.readouterr().out


def test_generate_benchmark_prints_and_writes_its_figures(tmp_path, capsys, restore_threads):
    generate.main([*MICRO, "--batches", "1,2", "--steps", "2", "--json", str(tmp_path / "generate.json")])
    written = json.loads((tmp_path / "generate.json").read_text())
    rows = {row["variant"]: row for row in written["rows"]}
    assert list(rows) == ["batch 1, fused", "batch 2, fused", "batch 2, unfused"]
    assert rows["batch 2, fused"]["s/pair"] == pytest.approx(rows["batch 2, fused"]["s/call"] / 2)
    speedup = rows["batch 2, fused"]["pairs/s"] / rows["batch 1, fused"]["pairs/s"]
    assert written["batch_speedup"] == pytest.approx(speedup)
    assert written["floor"]["call_flops"] > written["floor"]["unet_step_flops"] > 0
    assert "batch 2, unfused" in capsys.readouterr().out


def test_localization_table_ranks_each_method_against_croppaste_seed_by_seed():
    def result(by_seed: dict[int, float], crack: float) -> dict:
        figures = {key: sum(by_seed.values()) / len(by_seed) for key, _ in localization.COLUMNS}
        return {"metrics": figures, "std": dict.fromkeys(figures, 0.05), "per_type": {"crack": {"pixel_ap": crack}},
                "pixel_ap_by_seed": by_seed, "grid_score": 1.01, "off_object": 0.0, "area_ratio_min": 0.9,
                "area_ratio_max": 1.1}

    results = {"dualanodiff": result({0: 0.80, 1: 0.70}, 0.71), "croppaste": result({0: 0.78, 1: 0.74}, 0.73)}
    lines = localization._table(results, ["crack"], {"grid_score": 1.0}).splitlines()
    width = len(lines[0].split("|"))
    assert all(len(line.split("|")) == width for line in lines)  # every row has every column
    assert "crack AP" in lines[0] and "seed by seed" in lines[0]
    ours, croppaste = lines[2].split("|"), lines[3].split("|")
    assert ours[-2].strip() == "-1.0 +- 4.2 (over at 1 of 2)" and ours[6].strip() == "71.0"
    assert croppaste[-2].strip() == ""  # the reference itself
