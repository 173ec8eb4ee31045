"""Measuring generated anomalies: downstream localization and detection, classification, and generation quality.

- `metrics`: AUROC, AP and F1-max from one sort (scikit-learn's tie handling).
- `sets`: the GENs of one object as the training side, the held-out real images as the test side.
- `localization`, `classification`, `quality`: the three evaluations, each writing OUT/metrics.json.
"""

from dualanodiff.evaluate.classification import ClassificationSettings, evaluate_classification
from dualanodiff.evaluate.localization import LocalizationSettings, evaluate_localization
from dualanodiff.evaluate.metrics import MetricInputError, RankingMetrics, ranking_metrics
from dualanodiff.evaluate.quality import QualityNetworks, evaluate_quality, pretrained_quality_networks

__all__ = [
    "ClassificationSettings",
    "LocalizationSettings",
    "MetricInputError",
    "QualityNetworks",
    "RankingMetrics",
    "evaluate_classification",
    "evaluate_localization",
    "evaluate_quality",
    "pretrained_quality_networks",
    "ranking_metrics",
]
