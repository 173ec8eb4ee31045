"""SAIM: position-aligned exchange between the two branches, and nothing else."""

import torch

from dualanodiff.model.saim import SAIM


def test_zero_initialised_saim_is_the_identity():
    saim = SAIM(8)
    hidden = torch.randn(6, 5, 8)
    assert torch.equal(saim(hidden, num_streams=2), hidden)


def test_each_position_sees_the_other_branch_at_the_same_position_only():
    torch.manual_seed(0)
    saim = SAIM(8, zero_init=False)
    hidden = torch.randn(2, 5, 8)  # one pair: global, anomaly; 5 positions
    changed = hidden.clone()
    changed[1, 3] += torch.randn(8)  # the anomaly branch at position 3
    before, after = saim(hidden, 2), saim(changed, 2)
    moved = (after[0] - before[0]).abs().sum(dim=-1)  # global branch, per position
    assert moved[3] > 1e-4
    assert torch.allclose(moved[[0, 1, 2, 4]], torch.zeros(4), atol=1e-6)


def test_pairs_do_not_mix_and_extra_streams_pass_through():
    torch.manual_seed(0)
    saim = SAIM(8, zero_init=False)
    hidden = torch.randn(6, 5, 8)  # two groups of three streams (global, anomaly, background)
    out = saim(hidden, num_streams=3)
    assert torch.equal(out[2], hidden[2]) and torch.equal(out[5], hidden[5])
    changed = hidden.clone()
    changed[4] += torch.randn(5, 8)  # the second group's anomaly branch
    assert torch.equal(saim(changed, 3)[:3], out[:3])
