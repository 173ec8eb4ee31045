"""How numbers and settings from disk are written on the page: one unit for every fraction, percent.

Metrics (AUROC, AP, F1-max, accuracy) and the per-sample figures of a generated set (mask area, branch agreement,
background preservation) are stored as fractions 0..1; the page shows all of them in percent with one decimal, so
two tables never disagree on the unit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

# Per-sample figures of a GEN that are fractions of the image (their "mean_" summaries too).
FRACTION_FIGURES = ("mask_area", "branch_agreement", "background_preservation")
MISSING = "–"


def is_number(value: Any) -> bool:
    """A real int or float (JSON's true/false are not figures)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def finite(value: Any) -> float | None:
    """`value` as a finite float, or None: a missing CSV cell, a non-number, NaN or infinity."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if not is_number(value) or not math.isfinite(float(value)):
        return None
    return float(value)


def percent(fraction: float | None) -> str:
    """A fraction 0..1 in percent with one decimal: 0.9731 -> "97.3"."""
    return MISSING if fraction is None else f"{100 * fraction:.1f}"


def is_fraction_figure(key: str) -> bool:
    """Whether a record or summary key (e.g. "mask_area", "summary.mean_mask_area") holds a fraction."""
    name = key.rsplit(".", 1)[-1]
    return name.removeprefix("mean_") in FRACTION_FIGURES


def figure_title(key: str) -> str:
    """A record key as a column or row title, saying the unit of fraction figures."""
    return f"{key} (percent)" if is_fraction_figure(key) else key


def figure_text(key: str, value: Any) -> str:
    """A per-sample figure: fractions in percent, other floats with four decimals."""
    if is_number(value) and is_fraction_figure(key):
        return percent(finite(value))
    if isinstance(value, float):
        return f"{value:.4f}"
    return scalar_text(value)


def scalar_text(value: Any) -> str:
    """A setting as short text; long lists and objects are cut at 200 characters."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        text = json.dumps(value, default=str)
        return text if len(text) <= 200 else text[:197] + "..."
    return str(value)


def flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested settings as dotted keys, e.g. {"lora": {"rank": 32}} -> [("lora.rank", 32)]."""
    items: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            items.extend(flatten(value, f"{name}."))
        else:
            items.append((name, value))
    return items


def settings_rows(items: Iterable[tuple[str, Any]]) -> list[tuple[str, str]]:
    """(title, text) pairs for a settings table; fraction figures among them are shown in percent."""
    rows = []
    for key, value in items:
        if is_number(value) and is_fraction_figure(key):
            rows.append((figure_title(key), percent(finite(value))))
        else:
            rows.append((key, scalar_text(value)))
    return rows
