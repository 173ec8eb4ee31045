"""The evaluation sections: per object, methods side by side, the best value of each column in bold."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from dualanodiff.evaluate.metrics import LOCALIZATION_METRICS
from dualanodiff.evaluate.settings import METRICS_FILE
from dualanodiff.report.find import Evaluation
from dualanodiff.report.page import Cell, Figure, Page, Table
from dualanodiff.report.values import MISSING, finite, is_number, scalar_text
from dualanodiff.viz import plot_confusion_matrix

OURS = "dualanodiff"  # the method name our GEN folders record; listed first in the tables
LOCALIZATION_EXAMPLES = "examples.png"  # test images with their anomaly maps, beside a localization metrics.json


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    percent: bool = True
    digits: int = 1
    higher_is_better: bool = True

    def shown(self, value: float) -> float:
        """The value as displayed, so that equal-looking values tie for best."""
        return round(100 * value if self.percent else value, self.digits)

    def format(self, value: float, std: float | None) -> str:
        text = f"{self.shown(value):.{self.digits}f}"
        if std is not None:
            text += f" ± {round(100 * std if self.percent else std, self.digits):.{self.digits}f}"
        return text


LOCALIZATION = tuple(Column(key, title) for key, title in LOCALIZATION_METRICS)
QUALITY = (
    Column("inception_score", "IS", percent=False, digits=2),
    Column("ic_lpips", "IC-LPIPS", percent=False, digits=3),
    Column("kid", "KID", percent=False, digits=4, higher_is_better=False),
)
ACCURACY = Column("accuracy", "accuracy")
_ALL_METRIC_KEYS = {c.key for c in (*LOCALIZATION, *QUALITY, ACCURACY)}
_PERCENT_SEEDS = "percent; mean ± std over seeds where given"
_STRUCTURAL_KEYS = {"kind", "object", "methods", "method", "std", "per_type", "classes", "confusion_matrix"}


@dataclass(frozen=True)
class Row:
    labels: tuple[str, ...]
    values: dict[str, float]
    stds: dict[str, float]
    source: Evaluation
    group: str = ""


@dataclass(frozen=True)
class ObjectBlock:
    """One object's tables (each under an optional heading) and figures."""

    name: str
    tables: list[tuple[str, Table]]
    figures: list[Figure]


def _numbers(data: Any, keys: Iterable[str]) -> dict[str, float]:
    if not isinstance(data, dict):
        return {}
    return {key: float(data[key]) for key in keys if is_number(data.get(key)) and finite(data[key]) is not None}


def _single_seed(evaluation: Evaluation) -> bool:
    """One seed has no spread worth showing (its recorded std is 0)."""
    return evaluation.metrics.get("seeds") == 1 or len(evaluation.metrics.get("per_seed") or [None, None]) == 1


def _row(evaluation: Evaluation, data: dict[str, Any], columns: Sequence[Column], labels: tuple[str, ...],
         group: str = "") -> Row:
    keys = [c.key for c in columns]
    stds = {} if _single_seed(evaluation) else _numbers(data.get("std"), keys)
    return Row(labels, _numbers(data, keys), stds, evaluation, group)


def _best(column: Column, rows: Sequence[Row]) -> float | None:
    """The best displayed value of the column, when at least two rows compete for it."""
    shown = [column.shown(row.values[column.key]) for row in rows if column.key in row.values]
    if len(shown) < 2:
        return None
    return max(shown) if column.higher_is_better else min(shown)


def _source_text(evaluation: Evaluation) -> str:
    """The folder name plus the evaluation's scalar settings (seeds, epochs, backbone weights, ...)."""
    settings = [f"{key}={scalar_text(value)}" for key, value in evaluation.metrics.items()
                if key not in _STRUCTURAL_KEYS and not isinstance(value, (dict, list))
                and not (is_number(value) and (key in _ALL_METRIC_KEYS or key.endswith("_std")))]
    return evaluation.folder.name + (f" ({', '.join(settings)})" if settings else "")


def _metric_cell(column: Column, row: Row, best: float | None) -> Cell:
    if column.key not in row.values:
        return Cell(MISSING, "num muted")
    value = row.values[column.key]
    text = column.format(value, row.stds.get(column.key))
    if column.shown(value) == best:
        return Cell(text, "num best", bold=True)
    return Cell(text, "num")


def metric_table(page: Page, label_headers: Sequence[str], columns: Sequence[Column], rows: Sequence[Row],
                 caption: str) -> Table:
    """Rows of methods (grouped, e.g. per anomaly type); the best of each column within a group is marked."""
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        groups[row.group].append(row)
    best = {(group, column.key): _best(column, members) for group, members in groups.items() for column in columns}
    body = []
    for row in rows:
        cells = [Cell(label) for label in row.labels]
        cells += [_metric_cell(column, row, best[(row.group, column.key)]) for column in columns]
        cells.append(Cell(_source_text(row.source), "note wrap", page.href(row.source.folder / METRICS_FILE)))
        body.append(cells)
    return Table([*label_headers, *(c.header for c in columns), "source"], body, caption)


def by_object(evaluations: Iterable[Evaluation]) -> dict[str, list[Evaluation]]:
    """Evaluations per object, ours first, then the other methods by name."""
    objects: dict[str, list[Evaluation]] = defaultdict(list)
    for evaluation in sorted(evaluations, key=lambda e: (e.method != OURS, e.method, e.folder)):
        objects[evaluation.object].append(evaluation)
    return dict(sorted(objects.items()))


def _per_type(evaluation: Evaluation) -> dict[str, Any]:
    per_type = evaluation.metrics.get("per_type")
    return per_type if isinstance(per_type, dict) else {}


def _type_rows(members: list[Evaluation]) -> list[Row]:
    """Per anomaly type, each method's figures for it; the best is chosen within the type."""
    rows = []
    for anomaly in sorted({t for e in members for t in _per_type(e)}):
        for evaluation in members:
            figures = _per_type(evaluation).get(anomaly)
            if isinstance(figures, dict):
                rows.append(_row(evaluation, figures, LOCALIZATION, (anomaly, evaluation.method), group=anomaly))
    return rows


def localization_blocks(page: Page, evaluations: list[Evaluation]) -> list[ObjectBlock]:
    blocks = []
    for name, members in by_object(evaluations).items():
        rows = [_row(e, e.metrics, LOCALIZATION, (e.method,)) for e in members]
        tables = [("", metric_table(page, ["method"], LOCALIZATION, rows, _PERCENT_SEEDS))]
        type_rows = _type_rows(members)
        if type_rows:
            tables.append((f"{name}: per anomaly type (percent)",
                           metric_table(page, ["anomaly type", "method"], LOCALIZATION, type_rows, _PERCENT_SEEDS)))
        figures = [page.figure(e.folder / LOCALIZATION_EXAMPLES, f"anomaly maps: {e.method} ({e.folder.name})")
                   for e in members if (e.folder / LOCALIZATION_EXAMPLES).is_file()]
        blocks.append(ObjectBlock(name, tables, figures))
    return blocks


def _type_accuracy(value: Any) -> Any:
    """Per-type classification figures are either the accuracy itself or a dict holding it."""
    return value.get("accuracy") if isinstance(value, dict) else value


def _confusion_figure(page: Page, evaluation: Evaluation) -> Figure | None:
    picture = evaluation.folder / "confusion.png"
    caption = f"{evaluation.object}: {evaluation.method} ({evaluation.folder.name})"
    if picture.is_file():
        return page.figure(picture, caption)
    matrix, classes = evaluation.metrics.get("confusion_matrix"), evaluation.metrics.get("classes")
    if matrix is None or classes is None:
        return None
    target = page.files / f"{page.unique_name(f'confusion_{evaluation.object}_{evaluation.method}')}.png"
    try:
        plot_confusion_matrix(matrix, classes, target, title=caption)
    except (TypeError, ValueError) as error:
        page.warnings.append(f"{evaluation.folder / 'metrics.json'}: confusion matrix not drawn ({error})")
        return None
    return page.figure(target, caption)


def classification_blocks(page: Page, evaluations: list[Evaluation]) -> list[ObjectBlock]:
    blocks = []
    for name, members in by_object(evaluations).items():
        types = sorted({t for e in members for t in _per_type(e)})
        columns = [ACCURACY, *(Column(f"type:{t}", t) for t in types)]
        rows = []
        for evaluation in members:
            figures = {"accuracy": evaluation.metrics.get("accuracy"), "std": evaluation.metrics.get("std"),
                       **{f"type:{t}": _type_accuracy(v) for t, v in _per_type(evaluation).items()}}
            rows.append(_row(evaluation, figures, columns, (evaluation.method,)))
        table = metric_table(page, ["method"], columns, rows, "accuracy in percent: overall and per anomaly type")
        confusion = [f for e in members if (f := _confusion_figure(page, e)) is not None]
        blocks.append(ObjectBlock(name, [("", table)], confusion))
    return blocks


def quality_blocks(page: Page, evaluations: list[Evaluation]) -> list[ObjectBlock]:
    blocks = []
    for name, members in by_object(evaluations).items():
        ordered = sorted(members, key=lambda e: str(e.metrics.get("anomaly", "")))  # stable: ours stay first
        rows = [_row(e, e.metrics, QUALITY, (str(e.metrics.get("anomaly", "")), e.method),
                     group=str(e.metrics.get("anomaly", ""))) for e in ordered]
        table = metric_table(page, ["anomaly type", "method"], QUALITY, rows,
                             "IS, IC-LPIPS and KID as measured (scores, not percent)")
        blocks.append(ObjectBlock(name, [("", table)], []))
    return blocks


SECTIONS = {"localization": ("Localization and detection", localization_blocks),
            "classification": ("Classification", classification_blocks),
            "quality": ("Generation quality", quality_blocks)}


def add_evaluation_sections(page: Page, evaluations: list[Evaluation]) -> None:
    """One section per kind of evaluation found, in the order localization, classification, quality."""
    for kind, (heading, blocks) in SECTIONS.items():
        members = [e for e in evaluations if e.kind == kind]
        if members:
            page.add(heading, "evaluations.html.j2", kind=kind, blocks=blocks(page, members))
