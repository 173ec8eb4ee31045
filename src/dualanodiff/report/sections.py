"""The sections of training runs and generated sets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dualanodiff.generation.generated_set import META_FILE, REJECTS_SHEET, GeneratedSet
from dualanodiff.report.page import Cell, Figure, Page, Table
from dualanodiff.report.run import RunFolder, read_run
from dualanodiff.report.values import (
    MISSING,
    figure_text,
    figure_title,
    finite,
    flatten,
    is_fraction_figure,
    is_number,
    settings_rows,
)
from dualanodiff.viz import plot_loss_curve

PER_SAMPLE_ROWS = 50  # per-sample figures shown in full up to this many samples; the means cover all of them
SHEET_ROWS = 16  # samples on a generated set's contact sheet
_NOT_FIGURES = {"index", "seed"}  # numeric record keys that are identifiers, not measurements


def label(root: Path, folder: Path) -> str:
    """A folder's name on the page: its path below the report's root."""
    relative = folder.relative_to(root).as_posix()
    return root.name if relative == "." else relative


def _loss_summary(run: RunFolder) -> dict[str, str] | None:
    """How long the run logged and its mean loss over the last twentieth of the log."""
    if run.loss is None:
        return None
    finite_losses = [loss for loss in run.loss.losses if finite(loss) is not None]
    tail = finite_losses[-max(1, len(finite_losses) // 20):]
    if not tail:
        return None
    return {"logged": str(len(run.loss.losses)), "last_step": f"{run.loss.steps[-1]:g}", "tail": str(len(tail)),
            "mean": f"{sum(tail) / len(tail):.4g}"}


def _split_text(split: dict[str, Any] | None) -> str | None:
    if split is None:
        return None
    counts = ", ".join(f"{len(value)} {key}" for key, value in split.items() if isinstance(value, list))
    rule = f"; {split['rule']}" if isinstance(split.get("rule"), str) else ""
    return (counts or "see file") + rule


def add_run_section(page: Page, root: Path, folder: Path) -> None:
    """A RUN's loss curve (drawn from loss.csv when the run has no loss.png), contact sheet, split and settings."""
    run = read_run(folder)
    page.warnings.extend(run.problems)
    name = label(root, folder)
    loss_png = run.loss_png
    if loss_png is None and run.loss is not None:
        target = page.files / f"{page.unique_name(name)}_loss.png"
        loss_png = plot_loss_curve(run.loss.steps, run.loss.losses, target, title=f"training loss: {name}")
    figures = [page.figure(path, caption) for path, caption in ((loss_png, "training loss"),
                                                                 (run.contact_sheet, "contact sheet")) if path]
    page.add(f"Run: {name}", "run.html.j2", config=page.link(run.config_path, "config.json"),
             loss=_loss_summary(run), loss_csv=page.link(run.loss_csv, run.loss_csv.name) if run.loss_csv else None,
             figures=figures, split=_split_text(run.split), split_json=page.link(run.split_path, run.split_path.name),
             settings=settings_rows(flatten(run.config)))


def _figure_keys(records: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(key for record in records for key, value in record.items()
                              if is_number(value) and key not in _NOT_FIGURES))


def _caption(keys: list[str]) -> str:
    return "mask area, branch agreement and background preservation in percent" if any(
        is_fraction_figure(key) for key in keys) else ""


def summary_table(records: list[dict[str, Any]]) -> Table:
    """Mean, min and max of each figure over all samples."""
    keys = _figure_keys(records)
    rows = []
    for key in keys:
        values = [float(r[key]) for r in records if is_number(r.get(key)) and finite(r[key]) is not None]
        if values:
            figures = (sum(values) / len(values), min(values), max(values))
            rows.append([Cell(figure_title(key)), *(Cell(figure_text(key, v), "num") for v in figures),
                         Cell(str(len(values)), "num")])
    return Table(["figure", "mean", "min", "max", "samples"], rows, _caption(keys))


def sample_table(records: list[dict[str, Any]]) -> Table:
    """The figures of each sample, the first PER_SAMPLE_ROWS of them."""
    shown = records[:PER_SAMPLE_ROWS]
    keys = _figure_keys(records)
    columns = ["index", *(k for k in ("seed",) if any(k in r for r in shown)), *keys]
    rows = [[Cell(figure_text(c, r[c]) if c in r else MISSING, "num") for c in columns] for r in shown]
    return Table([figure_title(c) for c in columns], rows, _caption(keys))


def qc_table(qc: dict[str, Any]) -> Table:
    """Sample QC's counts: seeds tried, accepted, rejected per reason, samples given up."""
    rows = [[Cell("seeds tried"), Cell(str(qc.get("tried", MISSING)), "num")],
            [Cell("accepted"), Cell(str(qc.get("accepted", MISSING)), "num")]]
    rows += [[Cell(f"rejected: {reason.replace('_', ' ')}"), Cell(str(count), "num")]
             for reason, count in (qc.get("rejected") or {}).items()]
    rows.append([Cell("samples given up"), Cell(str(qc.get("given_up", MISSING)), "num")])
    return Table(["sample QC", "count"], rows)


def _contact_sheet(page: Page, root: Path, folder: Path, samples: int) -> Figure:
    sheet = page.files / f"{page.unique_name(label(root, folder))}.png"
    GeneratedSet.open(folder).contact_sheet(sheet, max_rows=SHEET_ROWS)
    return page.figure(sheet, f"the first {min(samples, SHEET_ROWS)} samples: image | anomaly part | "
                              "mask overlaid on the image")


def add_generated_section(page: Page, root: Path, folder: Path) -> None:
    """A GEN's contact sheet, per-sample figures and settings; raises when the set is damaged."""
    generated = GeneratedSet.open(folder)
    samples = generated.samples()
    records = [sample.record for sample in samples]
    meta = generated.meta
    nested = flatten({key: meta[key] for key in ("settings", "summary") if isinstance(meta.get(key), dict)})
    extra = [(key, value) for key, value in meta.items() if key not in {"format", "settings", "summary", "samples"}]
    has_figures = bool(_figure_keys(records))
    qc = (meta.get("summary") or {}).get("qc")
    rejects = folder / REJECTS_SHEET
    page.add(f"Generated: {label(root, folder)}", "generated.html.j2", method=generated.method,
             object=generated.object, anomaly=generated.anomaly, samples=len(samples),
             meta=page.link(folder / META_FILE, META_FILE),
             sheet=_contact_sheet(page, root, folder, len(samples)) if samples else None,
             summary=summary_table(records) if has_figures else None,
             per_sample=sample_table(records) if has_figures else None,
             shown=min(len(records), PER_SAMPLE_ROWS), settings=settings_rows([*extra, *nested]),
             qc=qc_table(qc) if isinstance(qc, dict) else None,
             rejects=page.figure(rejects, "the samples QC rejected") if rejects.is_file() else None)
