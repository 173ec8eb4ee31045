import torch

from dualanodiff.evaluate.fitting import seeded
from dualanodiff.evaluate.networks import DiscriminativeUNet, resnet18_classifier


def _weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_a_seed_fixes_a_networks_initial_weights_whatever_the_global_generator_held():
    torch.manual_seed(1)
    first = _weights(seeded(7, lambda: DiscriminativeUNet(2)))
    torch.manual_seed(2)
    torch.rand(100)
    again = _weights(seeded(7, lambda: DiscriminativeUNet(2)))
    other = _weights(seeded(8, lambda: DiscriminativeUNet(2)))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))


def test_the_classifiers_new_head_is_the_seeds_and_its_description_comes_through():
    torch.manual_seed(1)
    model, description = seeded(0, lambda: resnet18_classifier(3))
    torch.manual_seed(2)
    again, _ = seeded(0, lambda: resnet18_classifier(3))
    assert description == "scratch" and model.fc.out_features == 3
    assert torch.equal(model.fc.weight, again.fc.weight)
