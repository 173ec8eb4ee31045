import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from dualanodiff.errors import UserError
from dualanodiff.evaluate.metrics import MetricInputError, paired_difference, ranking_metrics


def _brute_force_f1_max(scores: np.ndarray, labels: np.ndarray) -> float:
    best = 0.0
    for threshold in np.unique(scores):
        predicted = scores >= threshold
        tp = np.sum(predicted & labels)
        fp = np.sum(predicted & ~labels)
        fn = np.sum(~predicted & labels)
        best = max(best, 2 * tp / (2 * tp + fp + fn))
    return best


def _cases():
    rng = np.random.default_rng(0)
    for size in (2, 3, 5, 17, 200, 3000):
        labels = rng.random(size) < 0.3
        labels[0], labels[-1] = True, False  # both classes present
        yield "continuous", rng.normal(size=size) + labels, labels
        yield "many ties", rng.integers(0, 4, size=size).astype(float), labels
        yield "informative ties", np.round(rng.random(size) + 0.5 * labels, 1), labels
    yield "all tied", np.zeros(10), np.arange(10) % 3 == 0
    yield "perfect", np.array([0.1, 0.2, 0.8, 0.9]), np.array([False, False, True, True])
    yield "reversed", np.array([0.9, 0.8, 0.2, 0.1]), np.array([False, False, True, True])


@pytest.mark.parametrize(("name", "scores", "labels"), list(_cases()))
def test_agrees_with_sklearn_and_brute_force(name, scores, labels):
    result = ranking_metrics(scores, labels)
    assert result.auroc == pytest.approx(roc_auc_score(labels, scores), abs=1e-9), name
    assert result.ap == pytest.approx(average_precision_score(labels, scores), abs=1e-9), name
    assert result.f1_max == pytest.approx(_brute_force_f1_max(scores, labels), abs=1e-12), name


def test_f1_threshold_reaches_f1_max():
    rng = np.random.default_rng(1)
    labels = rng.random(500) < 0.2
    scores = rng.random(500) + labels
    result = ranking_metrics(scores, labels)
    predicted = scores >= result.f1_threshold
    tp = np.sum(predicted & labels)
    assert 2 * tp / (predicted.sum() + labels.sum()) == pytest.approx(result.f1_max)


def test_image_shaped_inputs_and_integer_labels():
    rng = np.random.default_rng(2)
    masks = rng.random((4, 8, 8)) < 0.1
    maps = rng.random((4, 8, 8)) + masks
    flat = ranking_metrics(maps.ravel(), masks.ravel().astype(np.uint8))
    assert ranking_metrics(maps, masks) == flat
    assert flat.auroc > 0.9


@pytest.mark.parametrize("labels", [np.zeros(5, bool), np.ones(5, bool)])
def test_single_class_is_a_clear_error(labels):
    with pytest.raises(ValueError, match="need both classes"):
        ranking_metrics(np.arange(5.0), labels)
    with pytest.raises(UserError):
        ranking_metrics(np.arange(5.0), labels)


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        (np.array([]), np.array([]), "no scores"),
        (np.arange(3.0), np.array([0, 1]), "3 scores but 2 labels"),
        (np.array([0.1, np.nan]), np.array([0, 1]), "NaN"),
        (np.array([0.1, 0.2]), np.array([0, 2]), "0/1"),
    ],
)
def test_malformed_inputs_are_rejected(scores, labels, message):
    with pytest.raises(MetricInputError, match=message):
        ranking_metrics(scores, labels)


def test_paired_difference_is_taken_seed_by_seed_over_the_seeds_both_have():
    method = {0: 0.80, 1: 0.70, 2: 0.95, 5: 0.5}
    reference = {0: 0.78, 1: 0.73, 2: 0.90, 3: 0.99}  # seed 3 (and 5) only one side has: left out
    difference = paired_difference(method, reference)
    assert difference.count == 3 and difference.over == 2
    assert difference.mean == pytest.approx(np.mean([0.02, -0.03, 0.05]))
    assert difference.std == pytest.approx(np.std([0.02, -0.03, 0.05], ddof=1))
    assert difference.text() == "+1.3 +- 4.0 (over at 2 of 3)"
    assert paired_difference({0: 0.5}, {0: 0.4}) is None  # one seed has no spread
