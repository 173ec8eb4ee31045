"""A sweep's results section, read from its results.csv (fractions) and shown in percent.

results.md beside it is the same table written for people; the report links it but never parses it back.
"""

from __future__ import annotations

import csv
from pathlib import Path

from dualanodiff.evaluate.metrics import LOCALIZATION_METRICS
from dualanodiff.report.page import Cell, Page, Table
from dualanodiff.report.values import MISSING, finite, percent

RESULTS_CSV = "results.csv"
RESULTS_MD = "results.md"
ALL_TYPES = "(all)"  # the anomaly of an object's evaluation row
MEAN = "mean"  # the object of the last row: the mean over the evaluated objects
METRICS = LOCALIZATION_METRICS
COUNTS = (("samples", "samples"), ("empty_masks", "empty masks"))
GENERATION = (("mean_mask_area", "mask area"), ("mean_branch_agreement", "branch agreement"),
              ("mean_background_preservation", "background preservation"))
_COUNT_KEYS = {key for key, _ in COUNTS}
_REQUIRED = ("object", "anomaly")


def read_results(path: Path) -> list[dict[str, str]]:
    """The rows of a sweep's results.csv; ValueError or OSError say why it cannot be shown."""
    try:
        with path.open(newline="", encoding="utf-8") as file:
            reader = csv.DictReader(file)
            missing = [name for name in _REQUIRED if name not in (reader.fieldnames or ())]
            if missing:
                raise ValueError(f"not a sweep's results table: no column {', '.join(missing)}")
            return [{key: value or "" for key, value in row.items() if key is not None} for row in reader]
    except (UnicodeDecodeError, csv.Error) as error:
        raise ValueError(str(error)) from None


def duration(seconds: float) -> str:
    """Seconds as "45 s", "3 min 05 s" or "2 h 07 min"."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _figure(row: dict[str, str], key: str, bold: bool) -> Cell:
    """One cell: a count as it is, a fraction in percent, an empty cell as missing."""
    value = finite(row.get(key))
    if value is None:
        return Cell(MISSING, "num muted")
    return Cell(f"{value:.0f}" if key in _COUNT_KEYS else percent(value), "num", bold=bold)


def _figures(row: dict[str, str], bold: bool) -> list[Cell]:
    """The metric, count, generation and time cells of one row."""
    cells = [_figure(row, key, bold) for key, _ in (*METRICS, *COUNTS, *GENERATION)]
    seconds = finite(row.get("seconds"))
    if seconds is None:
        return [*cells, Cell(MISSING, "num muted")]
    return [*cells, Cell(duration(seconds), "num", bold=bold)]


def _headers(*labels: str) -> list[str]:
    return [*labels, *(title for _, title in METRICS), *(title for _, title in COUNTS),
            *(title for _, title in GENERATION), "train + generate time"]


def object_table(rows: list[dict[str, str]]) -> Table:
    """One row per object (its evaluation over all its types), then the mean over the objects in bold."""
    body = []
    for row in rows:
        if row.get("anomaly") != ALL_TYPES:
            continue
        bold = row.get("object") == MEAN
        body.append([Cell(row["object"], bold=bold), Cell(row.get("status", ""), bold=bold),
                     *_figures(row, bold)])
    return Table(_headers("object", "status"), body, "percent, except samples, empty masks and time")


def type_table(rows: list[dict[str, str]]) -> Table:
    """One row per (object, anomaly type): its figures in the object's evaluation and of its generated set."""
    body = [[Cell(row["object"]), Cell(row["anomaly"]), Cell(row.get("status", "")), *_figures(row, False)]
            for row in rows if row.get("anomaly") != ALL_TYPES]
    return Table(_headers("object", "anomaly", "status"), body, "percent, except samples, empty masks and time")


def problem_table(rows: list[dict[str, str]]) -> Table:
    """The jobs that did not finish and their error messages (long ones wrap)."""
    body = []
    for row in rows:
        if not row.get("error"):
            continue
        job = f"{row['object']} evaluation" if row["anomaly"] == ALL_TYPES else f"{row['object']}/{row['anomaly']}"
        body.append([Cell(job), Cell(row.get("status", "")), Cell(row["error"], "wrap error")])
    return Table(["job", "status", "error"], body)


def add_results_section(page: Page, folder: Path, label: str) -> None:
    """The section of one sweep results folder, or a warning when its results.csv cannot be read."""
    try:
        rows = read_results(folder / RESULTS_CSV)
    except (OSError, ValueError) as error:
        page.warnings.append(f"{folder / RESULTS_CSV}: results table not readable ({error})")
        return
    links = [page.link(folder / name, name) for name in (RESULTS_CSV, RESULTS_MD) if (folder / name).is_file()]
    tables = [object_table(rows), type_table(rows), problem_table(rows)]
    page.add(f"Results: {label}", "results.html.j2", links=links, objects=tables[0], types=tables[1],
             problems=tables[2])
