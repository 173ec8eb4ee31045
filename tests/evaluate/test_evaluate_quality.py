import numpy as np
import pytest
import torch
from scipy.stats import entropy
from torch import nn

from dualanodiff.errors import UserError
from dualanodiff.evaluate.quality import (
    LPIPS,
    QualityNetworks,
    ic_lpips,
    inception_score,
    kernel_inception_distance,
    lpips_embedding,
    measure_quality,
    squared_distances,
)


def test_inception_score_of_identical_confident_predictions_is_one():
    probabilities = np.tile(np.eye(5)[2], (40, 1))
    assert inception_score(probabilities, splits=4) == pytest.approx((1.0, 0.0))


@pytest.mark.parametrize("classes", [2, 3, 7])
def test_inception_score_of_confident_predictions_uniform_over_k_classes_is_k(classes):
    probabilities = np.eye(10)[np.arange(classes * 6) % classes]
    mean, std = inception_score(probabilities, splits=3)  # every split holds each class twice
    assert mean == pytest.approx(classes)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_inception_score_matches_the_kl_definition():
    probabilities = np.random.default_rng(0).dirichlet(np.full(6, 0.5), size=50)
    marginal = probabilities.mean(axis=0)
    expected = np.exp(np.mean([entropy(row, marginal) for row in probabilities]))
    assert inception_score(probabilities, splits=1)[0] == pytest.approx(expected, rel=1e-12)


def test_inception_score_uses_fewer_splits_for_small_sets():
    probabilities = np.eye(4)[np.arange(40) % 4]
    assert inception_score(probabilities) == pytest.approx((4.0, 0.0))  # one split of 40
    with pytest.raises(ValueError, match="splits"):
        inception_score(probabilities, splits=41)


def _unbiased_mmd(x, y):
    d = x.shape[1]

    def kernel(a, b):
        return (a @ b / d + 1) ** 3

    n = len(x)
    xx = sum(kernel(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(kernel(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(kernel(x[i], y[j]) for i in range(n) for j in range(n)) / n**2
    return xx + yy - 2 * xy


def test_kid_matches_the_unbiased_mmd_estimator():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(12, 5)), rng.normal(0.5, 1.0, size=(12, 5))
    mean, std = kernel_inception_distance(x, y, subsets=3, subset_size=12)  # the full sets, in any order
    assert mean == pytest.approx(_unbiased_mmd(x, y), rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-10)


def test_kid_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(2)
    features = rng.normal(size=(300, 16))
    same, _ = kernel_inception_distance(features, rng.normal(size=(300, 16)), subsets=20, subset_size=100)
    shifted, _ = kernel_inception_distance(features, features + 0.5, subsets=20, subset_size=100)
    further, _ = kernel_inception_distance(features, features + 1.0, subsets=20, subset_size=100)
    assert abs(same) < 0.02
    assert 0.1 < shifted < further


def test_kid_needs_two_images_a_side():
    with pytest.raises(UserError, match="at least 2"):
        kernel_inception_distance(np.zeros((1, 3)), np.zeros((5, 3)))


def _tiny_lpips(seed: int = 0) -> LPIPS:
    torch.manual_seed(seed)
    features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())
    lpips = LPIPS(features, taps=(1, 4), channels=(4, 6))
    for weight in lpips.linear:
        weight.data.uniform_(0.1, 1.0)
    return lpips.eval()


def _direct_lpips(lpips: LPIPS, a: torch.Tensor, b: torch.Tensor) -> float:
    """LPIPS written out literally: normalise, weighted squared difference, spatial mean, sum over taps."""
    def activations(x):
        x = ((x * 2 - 1) - lpips.shift) / lpips.scale
        out = []
        for index, layer in enumerate(lpips.features):
            x = layer(x)
            if index in lpips.taps:
                out.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return out

    total = 0.0
    for weight, fa, fb in zip(lpips.linear, activations(a), activations(b), strict=True):
        total += float(((fa - fb) ** 2 * weight.view(1, -1, 1, 1)).sum(1).mean())
    return total


def _images(count: int, seed: int, size: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, size, size, 3), dtype=np.uint8)


def test_lpips_distance_matrix_matches_the_literal_definition():
    lpips = _tiny_lpips()
    images = _images(3, 0)
    embedding = lpips_embedding(lpips, images, batch_size=2, device=torch.device("cpu"))
    matrix = squared_distances(embedding, embedding)
    tensors = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        assert float(matrix[0, 2]) == pytest.approx(_direct_lpips(lpips, tensors[:1], tensors[2:]), rel=1e-5)
    assert torch.allclose(matrix, matrix.T)
    assert torch.diagonal(matrix).abs().max() < 1e-6


def test_ic_lpips_of_identical_images_is_zero():
    lpips = _tiny_lpips()
    references = _images(2, 1)
    generated = np.repeat(references[:1], 6, axis=0)
    result = ic_lpips(lpips, generated, references, batch_size=4)
    assert result.value == pytest.approx(0.0, abs=1e-6)
    assert result.cluster_sizes == [6, 0]
    assert result.cluster_means[1] is None


def test_ic_lpips_clusters_around_the_nearest_reference_and_caps_cluster_size():
    lpips = _tiny_lpips()
    references = _images(2, 2)
    rng = np.random.default_rng(3)

    def near(image, count):
        noise = rng.integers(-12, 13, size=(count, *image.shape))
        return np.clip(image.astype(int) + noise, 0, 255).astype(np.uint8)

    generated = np.concatenate([near(references[0], 5), near(references[1], 3)])
    result = ic_lpips(lpips, generated, references, batch_size=3)
    assert result.cluster_sizes == [5, 3]
    assert all(mean > 0 for mean in result.cluster_means)
    assert result.value == pytest.approx(np.mean(result.cluster_means))

    capped = ic_lpips(lpips, generated, references, batch_size=3, max_per_cluster=2)
    embedding = lpips_embedding(lpips, generated[[0, 1]], batch_size=2, device=torch.device("cpu"))
    assert capped.cluster_means[0] == pytest.approx(float(squared_distances(embedding[:1], embedding[1:])[0, 0]))

    more_diverse = ic_lpips(lpips, _images(8, 4), references, batch_size=3)
    assert more_diverse.value > result.value


class _TinyClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        pool = self.body(x)
        return {"pool": pool, "logits": self.head(pool)}


def test_measure_quality_reports_every_figure():
    networks = QualityNetworks(inception=_TinyClassifier().eval(), lpips=_tiny_lpips(), inception_size=24,
                               lpips_size=16)
    generated = _images(10, 5, size=20)
    result = measure_quality(generated, _images(2, 6, size=32), _images(6, 7, size=32), networks, batch_size=4,
                             kid_subsets=5)
    assert 1.0 <= result["inception_score"] <= 5.0
    assert result["ic_lpips"] > 0
    assert sum(result["cluster_sizes"]) == 10
    assert np.isfinite(result["kid"]) and result["kid_std"] >= 0
    assert result["kid_subset_size"] == 6
    assert result["num_generated"] == 10 and result["num_real_anomalies"] == 6


def test_evaluate_quality_measures_a_gen_against_its_real_anomalies(synthetic_root, washer_gens, tmp_path):
    from dualanodiff.data import load_source
    from dualanodiff.evaluate.quality import evaluate_quality
    from dualanodiff.io import read_json

    networks = QualityNetworks(inception=_TinyClassifier(), lpips=_tiny_lpips(), inception_size=32, lpips_size=32,
                               sources={"inception": "tiny"})
    source = load_source(synthetic_root)
    metrics = evaluate_quality(source, washer_gens["croppaste-rust"], tmp_path, networks, device="cpu",
                               kid_subsets=3)
    assert metrics["kind"] == "quality"
    assert (metrics["object"], metrics["anomaly"], metrics["method"]) == ("washer", "rust", "croppaste")
    assert metrics["training_references"] == ["000.png", "001.png", "002.png", "003.png"]
    assert metrics["num_generated"] == 10 and metrics["num_real_anomalies"] == 12
    assert metrics["std"]["kid"] == metrics["kid_std"]
    assert read_json(tmp_path / "metrics.json") == metrics
    with pytest.raises(UserError, match="holds anomaly type 'rust', not 'crack'"):
        evaluate_quality(source, washer_gens["croppaste-rust"], tmp_path, networks, anomaly="crack")
