"""`dualanodiff report`: the HTML page for runs, generated sets, evaluations and sweeps."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from dualanodiff.cli.app import app
from dualanodiff.report import write_report


@app.command()
def report(
    directory: Path = typer.Argument(..., metavar="DIR",
                                     help="A RUN, GEN or evaluation folder, or a folder holding them."),
    out: Path | None = typer.Option(None, "--out", help="Where to write the page (default: DIR/report.html)"),
) -> None:
    """Write one self-contained HTML page (no network needed) for everything found in DIR.

    \b
    Shows each training run's settings, loss curve and contact sheet; each generated set's samples
    with mask overlays and per-sample figures; evaluation metrics with methods side by side (the best
    value of each column in bold) and confusion matrices; and a sweep's results table (read from its
    results.csv). Every metric and every mask area, branch agreement and background preservation is
    shown in percent. DIR is searched a few levels deep; pictures the report draws go to report_files/
    beside the page.

    \b
    Example: dualanodiff report demo-out
    Example: dualanodiff report sweep-out --out sweep-report/index.html
    """
    result = write_report(directory, out)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {result.path}: {result.runs} run(s), {result.generated} generated set(s), "
          f"{result.evaluations} evaluation(s), {result.tables} results table(s)")

