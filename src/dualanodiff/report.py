"""`dualanodiff report DIR`: one self-contained HTML page for training runs, generated sets and evaluations.

The page (`DIR/report.html` by default) uses inline CSS and relative links only, so it opens offline and can
be copied together with the folder. Pictures the report draws itself (contact sheets of generated sets, loss
curves from `loss.csv`, confusion matrices) go to `report_files/` beside the page; input folders are never
written to.

DIR may be a RUN, a GEN, an evaluation folder, or any folder holding those (a demo or sweep folder), which is
searched a few levels deep. Folders are recognised by their files:

    RUN         config.json (+ loss.csv / loss.png, contact_sheet.png, split.json)
    GEN         meta.json with "format": "dualanodiff-generated/1"
    evaluation  metrics.json with "kind": "localization" | "classification" | "quality"
    results     results.csv or results.md (a sweep's table)
"""

from __future__ import annotations

import csv
import datetime
import html
import json
import math
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from dualanodiff.errors import UserError
from dualanodiff.generated import FORMAT as GENERATED_FORMAT
from dualanodiff.generated import GeneratedSet
from dualanodiff.io import atomic_write, read_json
from dualanodiff.viz import contact_sheet_from_generated, plot_confusion_matrix, plot_loss_curve

MAX_DEPTH = 3
FILES_FOLDER = "report_files"
EVALUATION_KINDS = ("localization", "classification", "quality")
LOCALIZATION_EXAMPLES = "examples.png"  # test images with their anomaly maps, beside a localization metrics.json
OURS = "dualanodiff"  # the method name our GEN folders record; listed first in the tables
_RUN_KEYS = ("preset", "object", "anomaly", "steps")
_PER_SAMPLE_ROWS = 50  # per-sample figures shown in full up to this many samples; the means cover all of them
_NOT_FIGURES = {"index", "seed"}  # numeric record keys that are identifiers, not measurements


# ----------------------------------------------------------------------------------------------------------
# Finding the folders


@dataclass(frozen=True)
class Evaluation:
    folder: Path
    metrics: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.metrics["kind"]

    @property
    def object(self) -> str:
        return str(self.metrics.get("object", "unknown object"))

    @property
    def method(self) -> str:
        methods = self.metrics.get("methods") or self.metrics.get("method")
        if isinstance(methods, list):
            return ", ".join(str(m) for m in methods)
        return str(methods) if methods else self.folder.name


@dataclass
class Found:
    """What a folder tree holds that the report can show, plus the files it had to pass over and why."""

    runs: list[Path] = field(default_factory=list)
    generated: list[Path] = field(default_factory=list)
    evaluations: list[Evaluation] = field(default_factory=list)
    tables: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.runs or self.generated or self.evaluations or self.tables)


def _json_object(path: Path, skipped: list[str]) -> dict[str, Any] | None:
    """The JSON object in `path`, or None (with the reason in `skipped` when the file is unreadable)."""
    if not path.is_file():
        return None
    try:
        data = read_json(path)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        skipped.append(f"{path}: not readable JSON ({error})")
        return None
    return data if isinstance(data, dict) else None


def _is_run(folder: Path, config: dict[str, Any] | None) -> bool:
    if config is None:
        return False
    return any(key in config for key in _RUN_KEYS) or any(
        (folder / name).is_file() for name in ("loss.csv", "loss.png", "split.json"))


def find_outputs(root: str | Path, max_depth: int = MAX_DEPTH) -> Found:
    """Walk `root` (depth 0) and sort what it finds; RUN, GEN and evaluation folders are not entered."""
    found = Found()

    def visit(folder: Path, depth: int) -> None:
        meta = _json_object(folder / "meta.json", found.skipped)
        metrics = _json_object(folder / "metrics.json", found.skipped)
        if any((folder / name).is_file() for name in ("results.csv", "results.md")):
            found.tables.append(folder)
        if meta is not None and meta.get("format") == GENERATED_FORMAT:
            found.generated.append(folder)
            return
        if metrics is not None and metrics.get("kind") in EVALUATION_KINDS:
            found.evaluations.append(Evaluation(folder, metrics))
            return
        if _is_run(folder, _json_object(folder / "config.json", found.skipped)):
            found.runs.append(folder)
            return
        if depth >= max_depth:
            return
        try:
            children = sorted(p for p in folder.iterdir()
                              if p.is_dir() and not p.name.startswith(".") and p.name != FILES_FOLDER)
        except OSError as error:
            found.skipped.append(f"{folder}: not readable ({error.strerror})")
            return
        for child in children:
            visit(child, depth + 1)

    visit(Path(root), 0)
    return found


# ----------------------------------------------------------------------------------------------------------
# HTML pieces


def _text(value: Any) -> str:
    return html.escape(str(value))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _scalar_text(value: Any) -> str:
    if _is_number(value) and isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        text = json.dumps(value, default=str)
        return text if len(text) <= 200 else text[:197] + "..."
    return str(value)


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested settings as dotted keys, e.g. {"lora": {"rank": 32}} -> [("lora.rank", 32)]."""
    items: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            items.extend(_flatten(value, f"{name}."))
        else:
            items.append((name, value))
    return items


def _settings_table(items: Iterable[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{_text(key)}</th><td>{_text(_scalar_text(value))}</td></tr>"
                   for key, value in items)
    return f'<table class="settings">{rows}</table>' if rows else ""


class _Page:
    """Collects sections and files; turns paths into links relative to the page."""

    def __init__(self, page_path: Path):
        self.path = page_path
        self.files = page_path.parent / FILES_FOLDER
        self.sections: list[tuple[str, str, str]] = []  # (anchor, heading, body html)
        self.warnings: list[str] = []
        self._names: dict[str, int] = defaultdict(int)

    def href(self, target: Path) -> str:
        relative = os.path.relpath(target.resolve(), self.path.parent.resolve())
        return html.escape(quote(Path(relative).as_posix()))

    def unique_name(self, label: str) -> str:
        """A file and anchor name derived from `label`, unique within this page."""
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("._") or "item"
        self._names[base] += 1
        count = self._names[base]
        return base if count == 1 else f"{base}-{count}"

    def figure(self, target: Path, caption: str) -> str:
        link = self.href(target)
        return (f'<figure><a href="{link}"><img src="{link}" alt="{_text(caption)}"></a>'
                f"<figcaption>{_text(caption)}</figcaption></figure>")

    def link(self, target: Path, text: str) -> str:
        return f'<a href="{self.href(target)}">{_text(text)}</a>'

    def add(self, heading: str, body: str) -> None:
        self.sections.append((self.unique_name("sec-" + heading), heading, body))

    def render(self, title: str, intro: str) -> str:
        contents = "".join(f'<li><a href="#{anchor}">{_text(heading)}</a></li>'
                           for anchor, heading, _ in self.sections)
        sections = "".join(f'<section id="{anchor}"><h2>{_text(heading)}</h2>{body}</section>'
                           for anchor, heading, body in self.sections)
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{_text(title)}</title><style>{_CSS}</style></head><body>"
                f"<header><h1>{_text(title)}</h1>{intro}<nav><ol>{contents}</ol></nav></header>"
                f"{sections}</body></html>\n")


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
h3 { margin-top: 1.5em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: .92em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
thead th { background: #f3f3f3; }
table.settings th { background: #fafafa; font-weight: normal; color: #555; }
td.best { background: #eef7ee; }
td.note { color: #666; font-size: .88em; }
figure { display: inline-block; margin: .5em 1em .5em 0; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: .9em; }
.muted { color: #777; }
.warning { color: #a40; }
"""


# ----------------------------------------------------------------------------------------------------------
# Metric tables: methods side by side, the best value of each column in bold


@dataclass(frozen=True)
class _Column:
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


@dataclass(frozen=True)
class _Row:
    labels: tuple[str, ...]
    values: dict[str, float]
    stds: dict[str, float]
    source: Evaluation
    group: str = ""


def _numbers(data: Any, keys: Iterable[str]) -> dict[str, float]:
    if not isinstance(data, dict):
        return {}
    return {key: float(data[key]) for key in keys
            if _is_number(data.get(key)) and math.isfinite(float(data[key]))}


def _best(column: _Column, rows: Sequence[_Row]) -> float | None:
    """The best displayed value of the column, when at least two rows compete for it."""
    shown = [column.shown(row.values[column.key]) for row in rows if column.key in row.values]
    if len(shown) < 2:
        return None
    return max(shown) if column.higher_is_better else min(shown)


def _metric_table(page: _Page, label_headers: Sequence[str], columns: Sequence[_Column],
                  rows: Sequence[_Row]) -> str:
    groups: dict[str, list[_Row]] = defaultdict(list)
    for row in rows:
        groups[row.group].append(row)
    best = {(group, column.key): _best(column, members)
            for group, members in groups.items() for column in columns}

    head = "".join(f"<th>{_text(h)}</th>" for h in [*label_headers, *(c.header for c in columns), "source"])
    body = []
    for row in rows:
        cells = [f"<td>{_text(label)}</td>" for label in row.labels]
        for column in columns:
            if column.key not in row.values:
                cells.append('<td class="num muted">–</td>')
                continue
            text = _text(column.format(row.values[column.key], row.stds.get(column.key)))
            if column.shown(row.values[column.key]) == best[(row.group, column.key)]:
                cells.append(f'<td class="num best"><b>{text}</b></td>')
            else:
                cells.append(f'<td class="num">{text}</td>')
        source = page.link(row.source.folder / "metrics.json", _source_text(row.source))
        cells.append(f'<td class="note">{source}</td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


_STRUCTURAL_KEYS = {"kind", "object", "methods", "method", "std", "per_type", "classes", "confusion_matrix"}


def _source_text(evaluation: Evaluation) -> str:
    """The folder name plus the evaluation's scalar settings (seeds, epochs, backbone weights, ...)."""
    settings = [f"{key}={_scalar_text(value)}" for key, value in evaluation.metrics.items()
                if key not in _STRUCTURAL_KEYS and not isinstance(value, (dict, list))
                and not (_is_number(value) and (key in _ALL_METRIC_KEYS or key.endswith("_std")))]
    return f"{evaluation.folder.name}" + (f" ({', '.join(settings)})" if settings else "")


_LOCALIZATION = (
    _Column("pixel_auroc", "pixel AUROC"), _Column("pixel_ap", "pixel AP"),
    _Column("pixel_f1_max", "pixel F1-max"), _Column("image_auroc", "image AUROC"),
    _Column("image_ap", "image AP"), _Column("image_f1_max", "image F1-max"),
)
_QUALITY = (
    _Column("inception_score", "IS", percent=False, digits=2),
    _Column("ic_lpips", "IC-LPIPS", percent=False, digits=3),
    _Column("kid", "KID", percent=False, digits=4, higher_is_better=False),
)
_ACCURACY = _Column("accuracy", "accuracy")
_ALL_METRIC_KEYS = {c.key for c in (*_LOCALIZATION, *_QUALITY, _ACCURACY)}


def _single_seed(evaluation: Evaluation) -> bool:
    """One seed has no spread worth showing (its recorded std is 0)."""
    return evaluation.metrics.get("seeds") == 1 or len(evaluation.metrics.get("per_seed") or [None, None]) == 1


def _row(evaluation: Evaluation, data: dict[str, Any], columns: Sequence[_Column], labels: tuple[str, ...],
         group: str = "") -> _Row:
    keys = [c.key for c in columns]
    stds = {} if _single_seed(evaluation) else _numbers(data.get("std"), keys)
    return _Row(labels, _numbers(data, keys), stds, evaluation, group)


def _by_object(evaluations: Iterable[Evaluation]) -> dict[str, list[Evaluation]]:
    """Evaluations per object, ours first, then the other methods by name."""
    objects: dict[str, list[Evaluation]] = defaultdict(list)
    for evaluation in sorted(evaluations, key=lambda e: (e.method != OURS, e.method, e.folder)):
        objects[evaluation.object].append(evaluation)
    return dict(sorted(objects.items()))


def _per_type(evaluation: Evaluation) -> dict[str, Any]:
    per_type = evaluation.metrics.get("per_type")
    return per_type if isinstance(per_type, dict) else {}


def _localization_section(page: _Page, evaluations: list[Evaluation]) -> str:
    parts = ['<p class="muted">Downstream segmentation network trained on generated pairs, tested on '
             "held-out real anomalies; percent, mean ± std over seeds where given; the best value of each "
             "column in bold.</p>"]
    for object_name, members in _by_object(evaluations).items():
        parts.append(f"<h3>{_text(object_name)}</h3>")
        rows = [_row(e, e.metrics, _LOCALIZATION, (e.method,)) for e in members]
        parts.append(_metric_table(page, ["method"], _LOCALIZATION, rows))
        type_rows = []
        for anomaly in sorted({t for e in members for t in _per_type(e)}):
            for evaluation in members:
                figures = _per_type(evaluation).get(anomaly)
                if isinstance(figures, dict):
                    type_rows.append(_row(evaluation, figures, _LOCALIZATION, (anomaly, evaluation.method),
                                          group=anomaly))
        if type_rows:
            parts.append(f"<h4>{_text(object_name)}: per anomaly type</h4>")
            parts.append(_metric_table(page, ["anomaly type", "method"], _LOCALIZATION, type_rows))
        parts.extend(page.figure(e.folder / LOCALIZATION_EXAMPLES, f"anomaly maps: {e.method} ({e.folder.name})")
                     for e in members if (e.folder / LOCALIZATION_EXAMPLES).is_file())
    return "".join(parts)


def _type_accuracy(value: Any) -> Any:
    """Per-type classification figures are either the accuracy itself or a dict holding it."""
    return value.get("accuracy") if isinstance(value, dict) else value


def _confusion_figure(page: _Page, evaluation: Evaluation) -> str:
    picture = evaluation.folder / "confusion.png"
    caption = f"{evaluation.object}: {evaluation.method} ({evaluation.folder.name})"
    if picture.is_file():
        return page.figure(picture, caption)
    matrix, classes = evaluation.metrics.get("confusion_matrix"), evaluation.metrics.get("classes")
    if matrix is None or classes is None:
        return ""
    target = page.files / f"{page.unique_name(f'confusion_{evaluation.object}_{evaluation.method}')}.png"
    try:
        plot_confusion_matrix(matrix, classes, target, title=caption)
    except (TypeError, ValueError) as error:
        page.warnings.append(f"{evaluation.folder / 'metrics.json'}: confusion matrix not drawn ({error})")
        return ""
    return page.figure(target, caption)


def _classification_section(page: _Page, evaluations: list[Evaluation]) -> str:
    parts = ['<p class="muted">ResNet-18 trained on generated anomalies of all types of the object; accuracy '
             "(percent) on held-out real anomalies; the best value of each column in bold.</p>"]
    for object_name, members in _by_object(evaluations).items():
        types = sorted({t for e in members for t in _per_type(e)})
        columns = [_ACCURACY, *(_Column(f"type:{t}", t) for t in types)]
        rows = []
        for evaluation in members:
            figures = {"accuracy": evaluation.metrics.get("accuracy"),
                       **{f"type:{t}": _type_accuracy(v) for t, v in _per_type(evaluation).items()}}
            rows.append(_row(evaluation, {**figures, "std": evaluation.metrics.get("std")}, columns,
                             (evaluation.method,)))
        parts.append(f"<h3>{_text(object_name)}</h3>")
        parts.append(_metric_table(page, ["method"], columns, rows))
        parts.extend(_confusion_figure(page, evaluation) for evaluation in members)
    return "".join(parts)


def _quality_section(page: _Page, evaluations: list[Evaluation]) -> str:
    parts = ['<p class="muted">Generation quality: Inception Score and IC-LPIPS (higher is better), KID '
             "(lower is better); the best value per anomaly type in bold.</p>"]
    for object_name, members in _by_object(evaluations).items():
        ordered = sorted(members, key=lambda e: str(e.metrics.get("anomaly", "")))  # stable: ours stay first
        rows = [_row(e, e.metrics, _QUALITY, (str(e.metrics.get("anomaly", "")), e.method),
                     group=str(e.metrics.get("anomaly", ""))) for e in ordered]
        parts.append(f"<h3>{_text(object_name)}</h3>")
        parts.append(_metric_table(page, ["anomaly type", "method"], _QUALITY, rows))
    return "".join(parts)


# ----------------------------------------------------------------------------------------------------------
# Runs, generated sets and results tables


def _read_loss_csv(path: Path) -> tuple[list[float], list[float]]:
    try:
        with path.open(newline="") as file:
            reader = csv.DictReader(file)
            if not reader.fieldnames or not {"step", "loss"} <= set(reader.fieldnames):
                raise ValueError(f"needs the columns step,loss, has {reader.fieldnames}")
            rows = [(float(row["step"]), float(row["loss"])) for row in reader]
    except (OSError, UnicodeDecodeError, TypeError, csv.Error) as error:
        raise ValueError(str(error)) from None
    if not rows:
        raise ValueError("holds no rows")
    steps, losses = zip(*rows, strict=True)
    return list(steps), list(losses)


def _run_section(page: _Page, root: Path, run: Path) -> None:
    config = read_json(run / "config.json")
    parts = [f'<p class="muted">{page.link(run / "config.json", "config.json")}</p>']
    pictures = []
    loss_png, loss_csv = run / "loss.png", run / "loss.csv"
    if loss_csv.is_file():
        try:
            steps, losses = _read_loss_csv(loss_csv)
            finite = [loss for loss in losses if math.isfinite(loss)]
            tail = finite[-max(1, len(finite) // 20):]
            parts.append(f"<p>{len(losses)} logged steps, last step {steps[-1]:g}; mean loss over the last "
                         f"{len(tail)} logged steps: {sum(tail) / len(tail):.4g} "
                         f"({page.link(loss_csv, 'loss.csv')})</p>" if tail else "")
            if not loss_png.is_file():
                target = page.files / f"{page.unique_name(_label(root, run))}_loss.png"
                loss_png = plot_loss_curve(steps, losses, target, title=f"training loss: {_label(root, run)}")
        except ValueError as error:
            page.warnings.append(f"{loss_csv}: not a loss log ({error})")
    if loss_png.is_file():
        pictures.append(page.figure(loss_png, "training loss"))
    if (run / "contact_sheet.png").is_file():
        pictures.append(page.figure(run / "contact_sheet.png", "contact sheet"))
    parts.extend(pictures)
    split = _json_object(run / "split.json", page.warnings)
    if split is not None:
        counts = ", ".join(f"{len(value)} {key}" for key, value in split.items() if isinstance(value, list))
        rule = f"; {split['rule']}" if isinstance(split.get("rule"), str) else ""
        link = page.link(run / "split.json", "split.json")
        parts.append(f"<p>Split: {_text((counts or 'see file') + rule)} ({link})</p>")
    parts.append("<h3>Settings</h3>" + _settings_table(_flatten(config)))
    page.add(f"Run: {_label(root, run)}", "".join(parts))


def _figure_tables(records: list[dict[str, Any]]) -> str:
    keys = list(dict.fromkeys(key for record in records for key, value in record.items()
                              if _is_number(value) and key not in _NOT_FIGURES))
    if not keys:
        return '<p class="muted">The samples record no figures.</p>'
    summary = []
    for key in keys:
        values = [float(r[key]) for r in records if _is_number(r.get(key)) and math.isfinite(float(r[key]))]
        if values:
            summary.append(f"<tr><td>{_text(key)}</td><td class='num'>{sum(values) / len(values):.4f}</td>"
                           f"<td class='num'>{min(values):.4f}</td><td class='num'>{max(values):.4f}</td>"
                           f"<td class='num'>{len(values)}</td></tr>")
    parts = ["<h3>Figures over all samples</h3><table><thead><tr><th>figure</th><th>mean</th><th>min</th>"
             f"<th>max</th><th>samples</th></tr></thead><tbody>{''.join(summary)}</tbody></table>"]
    shown = records[:_PER_SAMPLE_ROWS]
    columns = ["index", *(k for k in ("seed",) if any(k in r for r in shown)), *keys]
    head = "".join(f"<th>{_text(c)}</th>" for c in columns)
    def cell(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, float) else _scalar_text(value)

    body = "".join("<tr>" + "".join(f"<td class='num'>{_text(cell(r.get(c, '–')))}</td>" for c in columns)
                   + "</tr>" for r in shown)
    more = f" (the first {len(shown)} of {len(records)})" if len(records) > len(shown) else ""
    parts.append(f"<h3>Per sample{_text(more)}</h3><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
                 "</table>")
    return "".join(parts)


def _generated_section(page: _Page, root: Path, folder: Path) -> None:
    generated = GeneratedSet.open(folder)
    samples = generated.samples()
    parts = [f"<p>{_text(generated.method)}: {_text(generated.object)} / {_text(generated.anomaly)}, "
             f"{len(samples)} complete samples ({page.link(folder / 'meta.json', 'meta.json')})</p>"]
    if samples:
        sheet = page.files / f"{page.unique_name(_label(root, folder))}.png"
        contact_sheet_from_generated(folder, sheet)
        parts.append(page.figure(sheet, f"the first {min(len(samples), 16)} samples: image | anomaly part | "
                                        "mask overlaid on the image"))
        parts.append(_figure_tables([sample.record for sample in samples]))
    settings = _flatten({key: generated.meta.get(key) for key in ("settings", "summary")
                         if isinstance(generated.meta.get(key), dict)})
    extra = [(key, value) for key, value in generated.meta.items()
             if key not in {"format", "settings", "summary", "samples"}]
    parts.append("<h3>Settings</h3>" + _settings_table([*extra, *settings]))
    page.add(f"Generated: {_label(root, folder)}", "".join(parts))


def _markdown_table(text: str) -> str:
    """The pipe tables of a results.md as HTML (other lines as paragraphs); **bold** cells stay bold."""

    def cell(value: str, tag: str) -> str:
        escaped = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", _text(value.strip()))
        return f"<{tag}>{escaped}</{tag}>"

    parts, table = [], []

    def flush() -> None:
        if table:
            head, *body = table
            rows = "".join("<tr>" + "".join(cell(c, "td") for c in r) + "</tr>" for r in body)
            parts.append(f"<table><thead><tr>{''.join(cell(c, 'th') for c in head)}</tr></thead>"
                         f"<tbody>{rows}</tbody></table>")
            table.clear()

    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|"):
            cells = stripped.strip("|").split("|")
            if not all(re.fullmatch(r"\s*:?-+:?\s*", c) for c in cells):
                table.append(cells)
            continue
        flush()
        if stripped:
            parts.append(f"<p>{_text(stripped.lstrip('#').strip())}</p>")
    flush()
    return "".join(parts)


def _csv_table(path: Path) -> str:
    with path.open(newline="") as file:
        rows = list(csv.reader(file))
    if not rows:
        return '<p class="muted">results.csv is empty.</p>'
    head, *body = rows
    return ("<table><thead><tr>" + "".join(f"<th>{_text(c)}</th>" for c in head) + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(f"<td>{_text(c)}</td>" for c in r) + "</tr>" for r in body)
            + "</tbody></table>")


def _results_section(page: _Page, root: Path, folder: Path) -> None:
    csv_path, md_path = folder / "results.csv", folder / "results.md"
    links = " · ".join(page.link(p, p.name) for p in (csv_path, md_path) if p.is_file())
    try:
        table = _csv_table(csv_path) if csv_path.is_file() else _markdown_table(md_path.read_text())
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        page.warnings.append(f"{folder}: results table not readable ({error})")
        return
    page.add(f"Results: {_label(root, folder)}", f'<p class="muted">{links}</p>{table}')


def _label(root: Path, folder: Path) -> str:
    relative = folder.relative_to(root).as_posix()
    return root.name if relative == "." else relative


# ----------------------------------------------------------------------------------------------------------
# The page


@dataclass(frozen=True)
class Report:
    path: Path
    runs: int
    generated: int
    evaluations: int
    tables: int
    warnings: list[str]


def write_report(root: str | Path, out: str | Path | None = None, *, max_depth: int = MAX_DEPTH) -> Report:
    """Write the HTML report of everything under `root` to `out` (default `root/report.html`)."""
    root = Path(root)
    if not root.exists():
        raise UserError(f"{root}: no such folder")
    if not root.is_dir():
        raise UserError(f"{root}: not a folder")
    found = find_outputs(root, max_depth)
    if not found:
        reason = f"; skipped {found.skipped[0]}" if found.skipped else ""
        raise UserError(f"{root}: holds no run (config.json), generated set (meta.json), evaluation "
                        f"(metrics.json) or results table (searched to depth {max_depth}){reason}")
    page_path = Path(out) if out is not None else root / "report.html"
    if page_path.is_dir():
        page_path = page_path / "report.html"
    page = _Page(page_path)
    page.warnings.extend(found.skipped)

    overview = root / "contact_sheet.png"
    if overview.is_file() and root not in found.runs:
        page.add("Overview", page.figure(overview, "contact sheet"))
    for folder in found.tables:
        _results_section(page, root, folder)
    sections = {"localization": ("Localization and detection", _localization_section),
                "classification": ("Classification", _classification_section),
                "quality": ("Generation quality", _quality_section)}
    for kind, (heading, render) in sections.items():
        members = [e for e in found.evaluations if e.kind == kind]
        if members:
            page.add(heading, render(page, members))
    for run in found.runs:
        _run_section(page, root, run)
    for folder in found.generated:
        try:
            _generated_section(page, root, folder)
        except (UserError, ValueError, OSError) as error:
            # One damaged set (a truncated PNG, a broken record) must not take the rest of the page with it.
            page.warnings.append(f"{folder}: generated set not shown ({error})")
    if page.warnings:
        page.add("Skipped", "<ul>" + "".join(f'<li class="warning">{_text(w)}</li>' for w in page.warnings)
                 + "</ul>")

    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    intro = f'<p class="muted">{_text(root.resolve())} · written {_text(when)}</p>'
    document = page.render(f"dualanodiff report: {root.resolve().name}", intro)
    atomic_write(page_path, lambda tmp: tmp.write_text(document, encoding="utf-8"))
    return Report(page_path, len(found.runs), len(found.generated), len(found.evaluations), len(found.tables),
                  page.warnings)
