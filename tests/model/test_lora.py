"""Per-branch LoRA: one batched pass equals a per-branch loop, and the branches are separate adapters."""

import torch

from dualanodiff.model.lora import BranchLoRA


def _randomised(lora: BranchLoRA) -> BranchLoRA:
    with torch.no_grad():
        lora.up.normal_()
    return lora


def test_batched_update_equals_a_loop_over_branches():
    torch.manual_seed(0)
    lora = _randomised(BranchLoRA(6, 10, rank=3))
    x = torch.randn(3 * 2, 7, 6)  # 3 pairs, interleaved (b f)
    expected = torch.stack([x[i] @ lora.down[i % 2] @ lora.up[i % 2] for i in range(6)])
    assert torch.allclose(lora(x, num_streams=2), expected, atol=1e-5)


def test_the_background_stream_gets_no_update_through_the_frozen_base():
    torch.manual_seed(0)
    lora = _randomised(BranchLoRA(6, 10, rank=3))
    update = lora(torch.randn(2 * 3, 7, 6), num_streams=3)
    assert torch.equal(update[2], torch.zeros(7, 10)) and torch.equal(update[5], torch.zeros(7, 10))
    assert update[0].abs().sum() > 0 and update[1].abs().sum() > 0


def test_the_background_stream_through_the_global_branch_gets_its_update_fused_or_not():
    torch.manual_seed(0)
    lora = _randomised(BranchLoRA(6, 10, rank=3, background_branch=0))
    x = torch.randn(2 * 3, 7, 6)
    update = lora(x, num_streams=3)
    for background in (2, 5):
        assert torch.allclose(update[background], x[background] @ lora.down[0] @ lora.up[0], atol=1e-5)
    weight = torch.randn(10, 6)
    fused = lora.fused_weight(weight, num_streams=3)
    assert torch.equal(fused[2], fused[0]) and not torch.equal(fused[2], weight.t())
    assert torch.allclose(x[2] @ fused[2], x[2] @ weight.t() + update[2], atol=1e-5)


def test_new_adapter_is_the_identity_and_branches_learn_separately():
    lora = BranchLoRA(6, 10, rank=3)
    x = torch.randn(4, 7, 6)
    assert torch.equal(lora(x, 2), torch.zeros(4, 7, 10))
    _randomised(lora)
    target = torch.zeros(4, 7, 10)
    target[1::2] = 1.0  # only the anomaly branch is asked to change
    torch.nn.functional.mse_loss(lora(x, 2), target).backward()
    assert lora.up.grad[0].abs().sum() > 0 and lora.up.grad[1].abs().sum() > 0
    assert not torch.allclose(lora.up.grad[0], lora.up.grad[1])
