"""The shared optimisation loop's pieces: learning-rate schedules and flip variants."""

import math

import pytest
import torch

from dualanodiff.training.loop import flip_variants, lr_factor


def test_constant_schedule_is_one():
    assert {lr_factor("constant", step, 100) for step in range(100)} == {1.0}


def test_cosine_schedule_warms_up_then_decays_to_a_tenth():
    steps = 200
    factors = [lr_factor("cosine", step, steps) for step in range(steps)]
    warmup = 10  # 5 % of 200
    assert factors[:warmup] == pytest.approx([(i + 1) / warmup for i in range(warmup)])
    assert factors[warmup] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[warmup:], factors[warmup + 1:], strict=False))
    assert factors[-1] == pytest.approx(0.1, abs=1e-3)
    assert math.isclose(lr_factor("cosine", 0, 1), 1.0)
    with pytest.raises(ValueError, match="unknown learning-rate schedule"):
        lr_factor("step", 0, 10)


def test_flip_variants_identity_first():
    pixels = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).view(2, 3, 2, 2)
    assert flip_variants(pixels, False, False).shape == (2, 1, 3, 2, 2)
    variants = flip_variants(pixels, True, True)
    assert variants.shape == (2, 4, 3, 2, 2)
    assert torch.equal(variants[:, 0], pixels)
    assert torch.equal(variants[:, 1], pixels.flip(-1))
    assert torch.equal(variants[:, 2], pixels.flip(-2))
    assert torch.equal(variants[:, 3], pixels.flip(-1).flip(-2))
