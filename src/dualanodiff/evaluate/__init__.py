"""Measuring generated anomalies: downstream localization and detection, classification, and generation quality.

- `metrics`: AUROC, AP and F1-max from one sort (scikit-learn's tie handling).
- `sets`: the GENs of one object as the training side, the held-out real images as the test side.
- `localization`, `classification`, `quality`: the three evaluations, each writing OUT/metrics.json.
"""

from dualanodiff.lazy import lazy_exports

_EXPORTS = {
    "ClassificationSettings": "dualanodiff.evaluate.classification",
    "evaluate_classification": "dualanodiff.evaluate.classification",
    "LocalizationSettings": "dualanodiff.evaluate.settings",
    "evaluate_localization": "dualanodiff.evaluate.localization",
    "MetricInputError": "dualanodiff.evaluate.metrics",
    "RankingMetrics": "dualanodiff.evaluate.metrics",
    "ranking_metrics": "dualanodiff.evaluate.metrics",
    "QualityNetworks": "dualanodiff.evaluate.quality",
    "evaluate_quality": "dualanodiff.evaluate.quality",
    "pretrained_quality_networks": "dualanodiff.evaluate.quality",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
