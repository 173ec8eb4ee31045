"""Generation quality: Inception Score, IC-LPIPS and KID, written against plain torch modules.

The metric functions take any network, so tests can check the computation with small random ones; the
pretrained builders (`inception_network`, `vgg16_lpips`) load local weights only (see `weights`).

- Inception Score: exp(E_x KL(p(y|x) || p(y))) over `splits` equal parts of the set, mean and std over the parts.
  The usual 10 parts, but never fewer than 100 images per part (1 part under 200 images), since small parts bias
  the score low.
- IC-LPIPS (Ojha et al. 2021, as in DFMGAN / AnomalyDiffusion / DualAnoDiff): every generated image joins the
  cluster of the nearest (by LPIPS) of the k training-side real anomaly images; inside each cluster, the mean LPIPS
  over all pairs of its first (by index) at most 50 members; the average over the clusters with at least 2
  members. LPIPS is VGG16 LPIPS v0.1 (Zhang et al. 2018) at 256x256.
- KID (Binkowski et al. 2018): the unbiased MMD^2 with the kernel k(x, y) = (x.y / d + 1)^3 between Inception
  pool features of the generated images and of ALL real anomaly images of the type, averaged over 100 random
  subsets of min(1000, n_generated, n_real) of each; `kid_std` is the spread over the subsets.

The Inception network is torchvision's Inception-v3, not the TF-FID one, so the figures are comparable between
methods measured here but not to the third decimal with papers.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor
from tqdm import tqdm

from dualanodiff.data import DataSource, load_images, resized_rgb
from dualanodiff.devices import resolve_device
from dualanodiff.errors import ModelError, UserError, first_line
from dualanodiff.evaluate.imaging import batches, imagenet_normalize, to_tensor
from dualanodiff.evaluate.sets import load_generated, open_generated_sets, recorded_split
from dualanodiff.evaluate.settings import METRICS_FILE
from dualanodiff.evaluate.weights import find_weights, load_state_dict_file
from dualanodiff.io import write_json

INCEPTION_SIZE = 299
LPIPS_SIZE = 256
MAX_PER_CLUSTER = 50
INCEPTION_FILE = "inception_v3_google-0cc3c7bd.pth"
VGG16_FILE = "vgg16-397923af.pth"
LPIPS_FILE = "lpips_vgg_v0.1.pth"

# LPIPS' input scaling (for inputs in [-1, 1]) and the VGG16 layers it compares: relu1_2 ... relu5_3.
_LPIPS_SHIFT = (-0.030, -0.088, -0.188)
_LPIPS_SCALE = (0.458, 0.448, 0.450)
_VGG16_TAPS = (3, 8, 15, 22, 29)
_VGG16_CHANNELS = (64, 128, 256, 512, 512)


# ---------------------------------------------------------------------------------------------------------------
# Inception Score and KID: pure functions of network outputs.

def default_splits(count: int) -> int:
    return int(np.clip(count // 100, 1, 10))


def inception_score(probabilities: np.ndarray, splits: int | None = None) -> tuple[float, float]:
    """(mean, std over splits) of exp(E_x KL(p(y|x) || p(y))) for (N, classes) class probabilities."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or len(probabilities) == 0:
        raise ValueError(f"expected (N, classes) probabilities, got shape {probabilities.shape}")
    splits = default_splits(len(probabilities)) if splits is None else splits
    if not 1 <= splits <= len(probabilities):
        raise ValueError(f"cannot cut {len(probabilities)} images into {splits} splits")
    scores = []
    for part in np.array_split(probabilities, splits):
        marginal = part.mean(axis=0, keepdims=True)
        # 0 log 0 = 0: where p(y|x) = 0 the term vanishes (and p(y) > 0 wherever p(y|x) > 0).
        terms = np.where(part > 0, part * (np.log(np.where(part > 0, part, 1.0)) - np.log(
            np.where(marginal > 0, marginal, 1.0))), 0.0)
        scores.append(np.exp(terms.sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


def kernel_inception_distance(features_a: np.ndarray, features_b: np.ndarray, *, subsets: int = 100,
                              subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """(mean, std over subsets) of the unbiased polynomial-kernel MMD^2 between two (N, d) feature sets."""
    features_a = np.asarray(features_a, dtype=np.float64)
    features_b = np.asarray(features_b, dtype=np.float64)
    if features_a.ndim != 2 or features_a.shape[1:] != features_b.shape[1:]:
        raise ValueError(f"feature sets of shapes {features_a.shape} and {features_b.shape} do not match")
    size = min(subset_size, len(features_a), len(features_b))
    if size < 2:
        raise UserError(f"KID needs at least 2 images on each side, got {len(features_a)} and {len(features_b)}")
    dimension = features_a.shape[1]
    rng = np.random.default_rng(seed)
    estimates = []
    for _ in range(subsets):
        x = features_a[rng.choice(len(features_a), size, replace=False)]
        y = features_b[rng.choice(len(features_b), size, replace=False)]
        k_xx = (x @ x.T / dimension + 1.0) ** 3
        k_yy = (y @ y.T / dimension + 1.0) ** 3
        k_xy = (x @ y.T / dimension + 1.0) ** 3
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (size * (size - 1))
        estimates.append(within - 2.0 * k_xy.mean())
    return float(np.mean(estimates)), float(np.std(estimates))


@torch.no_grad()
def network_outputs(network: Callable[[torch.Tensor], dict[str, torch.Tensor]], images: np.ndarray, *,
                    size: int, batch_size: int, device: torch.device, description: str = "") -> dict[str, np.ndarray]:
    """Run `network` (returning a dict of tensors) over uint8 (N, H, W, 3) images resized to `size` and
    ImageNet-standardised; each output flattened to (N, -1)."""
    outputs: dict[str, list[np.ndarray]] = {}
    for part in tqdm(list(batches(len(images), batch_size)), desc=description, leave=False, disable=not description):
        batch = to_tensor(images[part], device)
        if batch.shape[-2:] != (size, size):
            batch = nn.functional.interpolate(batch, size=(size, size), mode="bilinear", antialias=True,
                                              align_corners=False)
        for name, value in network(imagenet_normalize(batch)).items():
            outputs.setdefault(name, []).append(value.flatten(1).double().cpu().numpy())
    return {name: np.concatenate(values) for name, values in outputs.items()}


def inception_network(path: Path) -> nn.Module:
    """torchvision's Inception-v3 with ImageNet weights, returning {"pool": 2048-d features, "logits": 1000}."""
    model = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=True)
    _load_exactly(model, path)
    with warnings.catch_warnings():  # the eval graph is all we use; torchvision warns it differs from train's
        warnings.simplefilter("ignore", UserWarning)
        return create_feature_extractor(model.eval(), return_nodes={"avgpool": "pool", "fc": "logits"})


def _load_exactly(model: nn.Module, path: Path) -> None:
    try:
        model.load_state_dict(load_state_dict_file(path))
    except RuntimeError as error:
        raise ModelError(f"{path}: does not fit {type(model).__name__} ({first_line(error)})") from None


# ---------------------------------------------------------------------------------------------------------------
# LPIPS and IC-LPIPS.

class LPIPS(nn.Module):
    """LPIPS over the activations of `features` (an nn.Sequential) after the layers listed in `taps`.

    Each tapped activation is unit-normalised along channels; the distance is sum over taps of the spatial mean of
    sum_c w_c (a_c - b_c)^2, with non-negative per-channel weights w (LPIPS' "lin" layers; ones by default).
    """

    def __init__(self, features: nn.Sequential, taps: Sequence[int], channels: Sequence[int]):
        super().__init__()
        if len(taps) != len(channels):
            raise ValueError(f"{len(taps)} taps but {len(channels)} channel counts")
        self.features = features[: max(taps) + 1]
        self.taps = tuple(taps)
        self.linear = nn.ParameterList(nn.Parameter(torch.ones(count)) for count in channels)
        self.register_buffer("shift", torch.tensor(_LPIPS_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_LPIPS_SCALE).view(1, 3, 1, 1))

    def load_linear(self, state: dict[str, torch.Tensor], source: str) -> None:
        """Take the lin layers from an LPIPS state dict (keys lin{i}.model.1.weight of shape (1, C, 1, 1))."""
        for index, weight in enumerate(self.linear):
            key = f"lin{index}.model.1.weight"
            if key not in state or state[key].numel() != weight.numel():
                raise ModelError(f"{source}: not LPIPS v0.1 VGG weights (no {key} with {weight.numel()} channels)")
            weight.data.copy_(state[key].flatten())

    def embed(self, images: torch.Tensor) -> list[torch.Tensor]:
        """[0, 1] images (N, 3, H, W) -> the unit-normalised activations of each tap, weighted by sqrt(w) and
        flattened to (N, C*H'*W'), so that the LPIPS distance is a scaled squared Euclidean distance."""
        x = ((images * 2.0 - 1.0) - self.shift) / self.scale
        embedded = []
        taps = iter(zip(self.taps, self.linear, strict=True))
        tap, weight = next(taps)
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index == tap:
                unit = x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
                weighted = unit * weight.clamp(min=0).sqrt().view(1, -1, 1, 1)
                # Dividing by sqrt(H'W') turns the squared distance's spatial sum into LPIPS' spatial mean.
                embedded.append(weighted.flatten(1) / np.sqrt(x.shape[-1] * x.shape[-2]))
                tap, weight = next(taps, (None, None))
        return embedded


def lpips_embedding(lpips: LPIPS, images: np.ndarray, *, batch_size: int, device: torch.device) -> torch.Tensor:
    """uint8 (N, H, W, 3) images at LPIPS' working size -> (N, D) embeddings, concatenated over taps."""
    with torch.no_grad():
        return torch.cat([torch.cat(lpips.embed(to_tensor(images[part], device)), dim=1)
                          for part in batches(len(images), batch_size)])


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, M) squared Euclidean distances between the rows of a (N, D) and b (M, D): the LPIPS distances of
    embeddings. Computed in float64 through ||a||^2 + ||b||^2 - 2 a.b, clamped at 0 against rounding."""
    a, b = a.double(), b.double()
    return (a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1).unsqueeze(0) - 2.0 * a @ b.T).clamp_(min=0.0)


@dataclass(frozen=True)
class ICLPIPSResult:
    value: float
    cluster_sizes: list[int]  # members assigned to each training image
    cluster_means: list[float | None]  # mean pairwise LPIPS inside each cluster (None when under 2 members)


def ic_lpips(lpips: LPIPS, generated: np.ndarray, references: np.ndarray, *, batch_size: int = 16,
             device: torch.device | str = "cpu", max_per_cluster: int = MAX_PER_CLUSTER) -> ICLPIPSResult:
    """IC-LPIPS of uint8 (N, S, S, 3) generated images around uint8 (k, S, S, 3) reference images."""
    device = torch.device(device)
    if len(references) == 0:
        raise UserError("IC-LPIPS needs at least one training-side real anomaly image")
    reference_embedding = lpips_embedding(lpips, references, batch_size=batch_size, device=device)
    assignment = []
    for part in tqdm(list(batches(len(generated), batch_size)), desc="IC-LPIPS clusters", leave=False):
        embedding = lpips_embedding(lpips, generated[part], batch_size=batch_size, device=device)
        assignment.append(squared_distances(embedding, reference_embedding).argmin(dim=1).cpu().numpy())
    assignment = np.concatenate(assignment) if assignment else np.zeros(0, dtype=np.int64)

    sizes, means = [], []
    for cluster in range(len(references)):
        members = np.flatnonzero(assignment == cluster)
        sizes.append(len(members))
        members = members[:max_per_cluster]
        if len(members) < 2:
            means.append(None)
            continue
        embedding = lpips_embedding(lpips, generated[members], batch_size=batch_size, device=device)
        distances = squared_distances(embedding, embedding)
        upper = torch.triu_indices(len(members), len(members), offset=1, device=distances.device)
        means.append(float(distances[upper[0], upper[1]].mean()))
    valid = [mean for mean in means if mean is not None]
    if not valid:
        raise UserError(f"IC-LPIPS needs a cluster of at least 2 generated images; {len(generated)} images "
                        f"around {len(references)} training images gave none")
    return ICLPIPSResult(value=float(np.mean(valid)), cluster_sizes=sizes, cluster_means=means)


def vgg16_lpips(vgg_path: Path, lpips_path: Path) -> LPIPS:
    """LPIPS v0.1 (VGG16): torchvision's VGG16 ImageNet features and Zhang et al.'s linear weights."""
    vgg = torchvision.models.vgg16(weights=None)
    _load_exactly(vgg, vgg_path)
    lpips = LPIPS(vgg.features, _VGG16_TAPS, _VGG16_CHANNELS)
    lpips.load_linear(load_state_dict_file(lpips_path), str(lpips_path))
    return lpips.eval()


def _lpips_package_weights() -> list[Path]:
    """Where an installed `lpips` package keeps its v0.1 VGG weights (it ships them), if installed."""
    import importlib.util

    spec = importlib.util.find_spec("lpips")
    if spec is None or spec.origin is None:
        return []
    return [Path(spec.origin).parent / "weights" / "v0.1" / "vgg.pth"]


# ---------------------------------------------------------------------------------------------------------------
# The whole measurement of one GEN folder.

@dataclass(frozen=True)
class QualityNetworks:
    """The networks `measure_quality` runs: `inception` returns {"pool": features, "logits": class logits} for
    ImageNet-standardised images at `inception_size`; `lpips` compares images at `lpips_size`; `sources` says where
    their weights came from (for metrics.json)."""

    inception: nn.Module
    lpips: LPIPS
    inception_size: int = INCEPTION_SIZE
    lpips_size: int = LPIPS_SIZE
    sources: dict[str, str] = field(default_factory=dict)


def pretrained_quality_networks(inception_weights: str | Path | None = None, vgg_weights: str | Path | None = None,
                                lpips_weights: str | Path | None = None) -> QualityNetworks:
    """Inception-v3 and VGG16 LPIPS with their pretrained weights, found locally (or a one-line ModelError)."""
    inception_path = find_weights(inception_weights, [INCEPTION_FILE], what="Inception-v3 (ImageNet, torchvision)",
                                  option="--inception-weights")
    vgg_path = find_weights(vgg_weights, [VGG16_FILE], what="VGG16 (ImageNet, torchvision)", option="--vgg-weights")
    lpips_path = find_weights(lpips_weights, [LPIPS_FILE], what="LPIPS v0.1 VGG linear-layer (vgg.pth of the "
                              "lpips package)", option="--lpips-weights", extra_candidates=_lpips_package_weights())
    return QualityNetworks(inception=inception_network(inception_path), lpips=vgg16_lpips(vgg_path, lpips_path),
                           sources={"inception": str(inception_path), "vgg16": str(vgg_path),
                                    "lpips": str(lpips_path)})


def measure_quality(generated: np.ndarray, training_references: np.ndarray, real_anomalies: np.ndarray,
                    networks: QualityNetworks, *, batch_size: int = 16, device: torch.device | str = "cpu",
                    kid_subsets: int = 100, seed: int = 0) -> dict[str, Any]:
    """IS, IC-LPIPS and KID of uint8 generated images (N, H, W, 3), any size (each network resizes).

    `training_references`: the training-side real anomaly images (the IC-LPIPS cluster centres);
    `real_anomalies`: all real anomaly images of the type, the KID reference.
    """
    device = torch.device(device)
    if len(generated) < 2:
        raise UserError(f"quality needs at least 2 generated images, got {len(generated)}")
    inception = networks.inception.to(device).eval()
    inception_generated = network_outputs(inception, generated, size=networks.inception_size,
                                          batch_size=batch_size, device=device, description="Inception (generated)")
    inception_real = network_outputs(inception, real_anomalies, size=networks.inception_size,
                                     batch_size=batch_size, device=device, description="Inception (real)")
    logits = torch.from_numpy(inception_generated["logits"])
    splits = default_splits(len(generated))
    score, score_std = inception_score(torch.softmax(logits, dim=1).numpy(), splits)
    kid, kid_std = kernel_inception_distance(inception_generated["pool"], inception_real["pool"],
                                             subsets=kid_subsets, seed=seed)
    clusters = ic_lpips(networks.lpips.to(device).eval(), _resize_all(generated, networks.lpips_size),
                        _resize_all(training_references, networks.lpips_size), batch_size=batch_size, device=device)
    return {"inception_score": score, "ic_lpips": clusters.value, "kid": kid, "kid_std": kid_std,
            "std": {"inception_score": score_std, "kid": kid_std},
            "inception_splits": splits, "kid_subsets": kid_subsets,
            "kid_subset_size": min(1000, len(generated), len(real_anomalies)),
            "cluster_sizes": clusters.cluster_sizes, "cluster_means": clusters.cluster_means,
            "num_generated": len(generated), "num_training_references": len(training_references),
            "num_real_anomalies": len(real_anomalies)}


def _resize_all(images: np.ndarray, size: int) -> np.ndarray:
    if images.shape[1:3] == (size, size):
        return images
    return np.stack([resized_rgb(image, size) for image in images])


def evaluate_quality(source: DataSource, gen_dir: str | Path, out: str | Path, networks: QualityNetworks, *,
                     object: str | None = None, anomaly: str | None = None, batch_size: int = 16,
                     device: str | None = None, kid_subsets: int = 100) -> dict[str, Any]:
    """Measure one GEN folder against the real anomalies of its type; writes OUT/metrics.json."""
    generated = open_generated_sets([gen_dir], object)[0]
    if anomaly is not None and anomaly != generated.anomaly:
        raise UserError(f"{generated.root}: holds anomaly type {generated.anomaly!r}, not {anomaly!r}")
    torch_device = resolve_device(device)
    split = recorded_split(generated, source)
    real = source.anomaly_samples(generated.object, generated.anomaly)
    native_size = generated.samples()[0].load()[0].shape[0]  # GEN images are square; the networks resize
    images, _ = load_generated(generated, native_size, training=False)
    references = load_images([s.image_path for s in split.train], networks.lpips_size, "training anomalies")
    real_images = load_images([s.image_path for s in real], networks.inception_size, "real anomalies")
    figures = measure_quality(images, references, real_images, networks, batch_size=batch_size,
                              device=torch_device, kid_subsets=kid_subsets)
    metrics = {"kind": "quality", "object": generated.object, "anomaly": generated.anomaly,
               "method": generated.method, "methods": [generated.method], "generated": str(generated.root),
               **figures, "training_references": [s.name for s in split.train],
               "networks": networks.sources, "device": str(torch_device)}
    write_json(Path(out) / METRICS_FILE, metrics)
    return metrics
