"""Threshold-free detection metrics (AUROC, average precision, F1-max) from one shared sort.

Pixel-level evaluation ranks millions of scores, so the three figures come from a single descending sort and the
cumulative true/false positive counts at each distinct score. Equal scores form one group, i.e. one threshold, as
in scikit-learn: AUROC integrates the ROC curve with the trapezoidal rule through those group ends, and AP is
sum_k (R_k - R_{k-1}) P_k over them (scikit-learn's step-wise definition, no interpolation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dualanodiff.errors import UserError


class MetricInputError(UserError, ValueError):
    """Scores and labels that do not define the metrics (e.g. one class only); a ValueError and a UserError."""


@dataclass(frozen=True)
class RankingMetrics:
    auroc: float
    ap: float
    f1_max: float
    f1_threshold: float  # the score at which F1 is largest (predict anomalous when score >= it)

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        """AUROC, AP and F1-max under `prefix` (the keys of `LOCALIZATION_METRICS` with "pixel_" / "image_")."""
        return {f"{prefix}{key}": getattr(self, key) for key in ("auroc", "ap", "f1_max")}


# The localization and detection figures, in the paper's order, with their column titles.
LOCALIZATION_METRICS = (("pixel_auroc", "pixel AUROC"), ("pixel_ap", "pixel AP"), ("pixel_f1_max", "pixel F1-max"),
                        ("image_auroc", "image AUROC"), ("image_ap", "image AP"), ("image_f1_max", "image F1-max"))
METRIC_KEYS = tuple(key for key, _ in LOCALIZATION_METRICS)


def percent(value: float | None, width: int = 0) -> str:
    """A 0..1 figure as percent with one decimal ("–" when missing), right-aligned to `width`."""
    return f"{'–' if value is None else f'{100 * value:.1f}':>{width}}"


@dataclass(frozen=True)
class PairedDifference:
    """A method's figure minus a reference method's, seed by seed: detectors of the same seed start from the same
    weights and see the data in the same order, so most of the spread between seeds cancels in the difference."""

    mean: float
    std: float  # over the seeds (sample standard deviation)
    over: int  # seeds at which the method is above the reference
    count: int

    def text(self) -> str:
        """In percent points: "-0.2 +- 3.2 (over at 3 of 8)"."""
        return f"{100 * self.mean:+.1f} +- {100 * self.std:.1f} (over at {self.over} of {self.count})"


def paired_difference(values: dict[int, float], reference: dict[int, float]) -> PairedDifference | None:
    """`values` minus `reference` (figures by seed) over the seeds both have; None for fewer than two."""
    seeds = sorted(set(values) & set(reference))
    if len(seeds) < 2:
        return None
    differences = np.array([values[seed] - reference[seed] for seed in seeds])
    return PairedDifference(float(differences.mean()), float(differences.std(ddof=1)), int((differences > 0).sum()),
                            len(seeds))


def _threshold_counts(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct thresholds descending, true positives, false positives) when predicting score >= threshold."""
    order = np.argsort(scores, kind="stable")[::-1]
    sorted_scores = scores[order]
    true_positives_all = np.cumsum(labels[order], dtype=np.int64)
    # The last index of each group of equal scores: only there is a threshold between two distinct scores.
    group_ends = np.flatnonzero(np.diff(sorted_scores)).tolist()
    group_ends = np.asarray([*group_ends, len(sorted_scores) - 1], dtype=np.int64)
    true_positives = true_positives_all[group_ends]
    false_positives = group_ends + 1 - true_positives
    return sorted_scores[group_ends], true_positives, false_positives


def ranking_metrics(scores: np.ndarray, labels: np.ndarray) -> RankingMetrics:
    """AUROC, average precision and the maximum F1 over all thresholds of `scores` against binary `labels`.

    Raises MetricInputError when the inputs are empty, of different sizes, not finite, or hold one class only.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel()
    if scores.size != labels.size:
        raise MetricInputError(f"{scores.size} scores but {labels.size} labels")
    if scores.size == 0:
        raise MetricInputError("no scores to evaluate")
    if not np.isfinite(scores).all():
        raise MetricInputError("the scores contain NaN or infinite values")
    if labels.dtype != bool:
        if not np.isin(labels, (0, 1)).all():
            raise MetricInputError("labels must be 0/1 or boolean")
        labels = labels.astype(bool)
    positives = int(labels.sum())
    negatives = labels.size - positives
    if positives == 0 or negatives == 0:
        kind = "normal" if positives == 0 else "anomalous"
        raise MetricInputError(f"all {labels.size} labels are {kind}: AUROC, AP and F1 need both classes")

    thresholds, true_positives, false_positives = _threshold_counts(scores, labels)
    tpr = np.concatenate([[0.0], true_positives / positives])
    fpr = np.concatenate([[0.0], false_positives / negatives])
    auroc = float(np.trapezoid(tpr, fpr))

    precision = true_positives / (true_positives + false_positives)
    recall_steps = np.diff(tpr)  # recall = tpr
    ap = float(np.sum(recall_steps * precision))

    # F1 = 2 TP / (2 TP + FP + FN) = 2 TP / (TP + FP + P).
    f1 = 2.0 * true_positives / (true_positives + false_positives + positives)
    best = int(np.argmax(f1))
    return RankingMetrics(auroc=auroc, ap=ap, f1_max=float(f1[best]), f1_threshold=float(thresholds[best]))
