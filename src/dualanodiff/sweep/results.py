"""A sweep's tables: SWEEP/results.csv (every row, fractions; the report reads it) and SWEEP/results.md (the
paper's table in percent, the generation figures per type, and what did not finish).

Rows: per object its evaluation row (anomaly "(all)") and one row per anomaly type; then the mean over the
evaluated objects. A sweep that ran no job never replaces tables holding more finished rows than its own (say,
a re-run over fewer objects): those stay as they are.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from dualanodiff.errors import UserError
from dualanodiff.evaluate.metrics import LOCALIZATION_METRICS, percent
from dualanodiff.generation.generated_set import GeneratedSet
from dualanodiff.io import atomic_write, read_json
from dualanodiff.report.results import ALL_TYPES, MEAN, RESULTS_CSV, RESULTS_MD
from dualanodiff.sweep.plan import EVALUATE, GENERATE, METRICS_FILE, Job

# The per-sample means `generate` writes into a GEN's summary, pooled over types weighted by their samples.
GENERATION_MEANS = ("mean_mask_area", "mean_branch_agreement", "mean_background_preservation")
METRIC_KEYS = tuple(key for key, _ in LOCALIZATION_METRICS)
CSV_COLUMNS = ("object", "anomaly", "status", *METRIC_KEYS, "samples", "empty_masks", *GENERATION_MEANS, "seconds",
               "error")


@dataclass(frozen=True)
class Results:
    csv: Path
    md: Path
    kept: bool = False  # the tables already there held more finished rows, and this sweep ran nothing


def _read_object(path: Path) -> dict[str, Any]:
    try:
        data = read_json(path)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _summary(job: Job) -> dict[str, Any]:
    try:
        summary = GeneratedSet.open(job.output(GENERATE)).meta.get("summary")
    except (UserError, OSError):
        return {}
    return summary if isinstance(summary, dict) else {}


def _pooled(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Generation figures of several types together: counts added, means weighted by samples."""
    samples = [s.get("samples", 0) for s in summaries]
    pooled: dict[str, Any] = {"samples": sum(samples), "empty_masks": sum(s.get("empty_masks", 0) for s in summaries)}
    for key in GENERATION_MEANS:
        present = [(s[key], n) for s, n in zip(summaries, samples, strict=True) if s.get(key) is not None and n]
        if present:
            pooled[key] = float(np.average([v for v, _ in present], weights=[n for _, n in present]))
    return pooled


def _row(name: str, anomaly: str, status: dict[str, Any], figures: dict[str, Any], generation: dict[str, Any]):
    return {"object": name, "anomaly": anomaly, "status": status.get("status", "not run"),
            **{key: figures.get(key) for key in METRIC_KEYS}, **generation, "seconds": status.get("seconds"),
            "error": status.get("error", "")}


def result_rows(jobs: Sequence[Job]) -> list[dict[str, Any]]:
    """Per object: its evaluation row and one row per anomaly type; then the mean over the evaluated objects."""
    rows, object_rows, all_summaries = [], [], []
    for name in dict.fromkeys(job.object for job in jobs):
        evaluation = next(job for job in jobs if job.object == name and job.anomaly is None)
        status = evaluation.status()
        done = status.get("status") == "done"
        metrics = _read_object(evaluation.output(EVALUATE) / METRICS_FILE) if done else {}
        type_rows, summaries = [], []
        for job in jobs:
            if job.object != name or job.anomaly is None:
                continue
            job_status = job.status()
            summary = _summary(job) if job_status.get("status") == "done" else {}
            summaries.append(summary)
            type_rows.append(_row(name, job.anomaly, job_status, metrics.get("per_type", {}).get(job.anomaly, {}),
                                  summary))
        all_summaries += summaries
        object_rows.append(_row(name, ALL_TYPES, status, metrics, _pooled(summaries)))
        rows += [object_rows[-1], *type_rows]
    evaluated = [row for row in object_rows if row["pixel_auroc"] is not None]
    mean = {"object": MEAN, "anomaly": ALL_TYPES,
            "status": f"{len(evaluated)} of {len(object_rows)} objects evaluated",
            **{key: float(np.mean([row[key] for row in evaluated])) if evaluated else None for key in METRIC_KEYS},
            **_pooled(all_summaries), "seconds": None, "error": ""}
    return [*rows, mean]


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    return round(value, 4) if isinstance(value, float) else value


def _markdown(header: Sequence[str], rows: list[list[str]], right_from: int) -> list[str]:
    lines = ["| " + " | ".join(header) + " |",
             "| " + " | ".join("---" if i < right_from else "---:" for i in range(len(header))) + " |"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _finished(rows: list[dict[str, Any]]) -> int:
    return sum(row.get("status") == "done" and row.get("object") != MEAN for row in rows)


def _csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows({key: _csv_value(row.get(key)) for key in CSV_COLUMNS} for row in rows)
    return buffer.getvalue()


def _generation_table(rows: list[dict[str, Any]]) -> list[str]:
    generation = []
    for row in rows:
        if row["anomaly"] == ALL_TYPES:
            continue
        generation.append([row["object"], row["anomaly"], row["status"], str(row.get("samples", "–")),
                           str(row.get("empty_masks", "–")), percent(row.get("mean_mask_area")),
                           percent(row.get("mean_branch_agreement")), percent(row.get("mean_background_preservation")),
                           tqdm.format_interval(row["seconds"]) if row["seconds"] is not None else "–"])
    return _markdown(["object", "anomaly", "status", "samples", "empty masks", "mask area %", "branch agreement %",
                      "background preservation %", "train + generate time"], generation, 3)


def _markdown_text(name: str, rows: list[dict[str, Any]], jobs: Sequence[Job]) -> str:
    object_rows = [row for row in rows if row["anomaly"] == ALL_TYPES]
    table = [[row["object"], *(percent(row[key]) for key in METRIC_KEYS)] for row in object_rows]
    table[-1] = [f"**{cell}**" for cell in table[-1]]
    lines = [f"# Sweep results: {name}", "",
             "Localization and detection (percent) on the held-out real images: DRAEM's U-Net trained on the "
             "generated pairs of all the object's types plus its normal images (`dualanodiff evaluate localization`).",
             "", *_markdown(["object", *(title for _, title in LOCALIZATION_METRICS)], table, 1), "",
             "Generation, per anomaly type (`dualanodiff generate`):", "", *_generation_table(rows)]
    problems = [f"- {row['object']}" + (f"/{row['anomaly']}" if row["anomaly"] != ALL_TYPES else " evaluation")
                + f": {row['status']}: {row['error']}" for row in rows if row["error"]]
    if problems:
        lines += ["", "Not finished (each job's output is under logs/, its status under jobs/):", "", *problems]
    if jobs:
        lines += ["", "The first job, replayed from its status file (every job's calls are in its file under jobs/):",
                  "", *(f"    {command}" for command in jobs[0].commands)]
    return "\n".join(lines) + "\n"


def write_results(out: str | Path, jobs: Sequence[Job], *, ran_jobs: bool = True) -> Results:
    """Write SWEEP/results.csv and results.md, unless this sweep ran no job (`ran_jobs`) and the tables there
    hold more finished rows than these."""
    out = Path(out)
    rows = result_rows(jobs)
    csv_path, md_path = out / RESULTS_CSV, out / RESULTS_MD
    if not ran_jobs and csv_path.is_file():
        with csv_path.open(newline="", encoding="utf-8") as file:
            existing = list(csv.DictReader(file))
        if _finished(existing) > _finished(rows):
            return Results(csv_path, md_path, kept=True)
    atomic_write(csv_path, lambda tmp: tmp.write_text(_csv_text(rows)))
    text = _markdown_text(out.name, rows, jobs)
    atomic_write(md_path, lambda tmp: tmp.write_text(text))
    return Results(csv_path, md_path)
