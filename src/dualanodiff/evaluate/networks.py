"""The downstream networks: DRAEM's discriminative U-Net (segmentation) and a torchvision ResNet-18 (classifier)."""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from dualanodiff.errors import ModelError
from dualanodiff.evaluate.settings import SIZE_MULTIPLE
from dualanodiff.evaluate.weights import load_state_dict_file

# DRAEM's discriminative encoder: six levels of (conv-BN-ReLU) x 2, widths 1, 2, 4, 8, 8, 8 times the base width,
# five 2x poolings in between, so the input side must be a multiple of 32.
_WIDTH_FACTORS = (1, 2, 4, 8, 8, 8)
assert 2 ** (len(_WIDTH_FACTORS) - 1) == SIZE_MULTIPLE  # every level but the first halves the side


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
    )


class _UpBlock(nn.Module):
    """Bilinear 2x upsampling and a conv, concatenated with the skip connection, then a double conv."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int):
        super().__init__()
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
            nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
        )
        self.fuse = _double_conv(out_channels + skip_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([self.up(x), skip], dim=1))


class DiscriminativeUNet(nn.Module):
    """DRAEM's discriminative sub-network with an RGB input: image (B, 3, H, W) -> 2-class logits (B, 2, H, W).

    DRAEM feeds the image and its reconstruction (6 channels); here the network sees the image alone, as in the
    supervised protocol of AnomalyDiffusion and DualAnoDiff. `base_width` is 64 in DRAEM; a few channels suffice
    for tests.
    """

    def __init__(self, base_width: int = 64, in_channels: int = 3, classes: int = 2):
        super().__init__()
        widths = [base_width * factor for factor in _WIDTH_FACTORS]
        self.encoder = nn.ModuleList()
        previous = in_channels
        for width in widths:
            self.encoder.append(_double_conv(previous, width))
            previous = width
        self.decoder = nn.ModuleList(
            _UpBlock(widths[level + 1], widths[level], widths[level]) for level in reversed(range(len(widths) - 1))
        )
        self.head = nn.Conv2d(widths[0], classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % SIZE_MULTIPLE or x.shape[-2] % SIZE_MULTIPLE:
            raise ValueError(f"input size {tuple(x.shape[-2:])} is not a multiple of {SIZE_MULTIPLE}")
        skips = []
        for level, block in enumerate(self.encoder):
            x = block(x if level == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for block in self.decoder:
            x = block(x, skips.pop())
        return self.head(x)


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Mean focal loss -(1 - p_t)^gamma log p_t of (B, C, H, W) logits against (B, H, W) class indices."""
    log_probabilities = F.log_softmax(logits, dim=1).gather(1, target.long().unsqueeze(1)).squeeze(1)
    return (-(1.0 - log_probabilities.exp()) ** gamma * log_probabilities).mean()


def resnet18_classifier(classes: int, backbone_weights: str | Path | None = None) -> tuple[nn.Module, str]:
    """A torchvision ResNet-18 with a `classes`-way head, and its description ("scratch" or "pretrained:PATH").

    With `backbone_weights` (an ImageNet state dict of torchvision's resnet18, safetensors or a torch file loaded
    with weights_only=True) every layer but the new head starts from those weights.
    """
    model = torchvision.models.resnet18(weights=None)
    description = "scratch"
    if backbone_weights is not None:
        state = load_state_dict_file(backbone_weights)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ModelError(f"{backbone_weights}: not a torchvision ResNet-18 state dict "
                             f"(missing {len(missing)} keys, e.g. {missing[:2]}; unexpected {unexpected[:2]})")
        description = f"pretrained:{backbone_weights}"
    model.fc = nn.Linear(model.fc.in_features, classes)
    return model, description
