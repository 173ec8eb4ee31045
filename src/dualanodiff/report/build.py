"""`write_report`: find the outputs under a folder and write their page."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from dualanodiff.errors import UserError
from dualanodiff.io import atomic_write
from dualanodiff.report.evaluations import add_evaluation_sections
from dualanodiff.report.find import MAX_DEPTH, Found, find_outputs
from dualanodiff.report.page import Page
from dualanodiff.report.results import add_results_section
from dualanodiff.report.sections import add_generated_section, add_run_section, label

OVERVIEW = "contact_sheet.png"  # a demo folder's picture of everything it made


@dataclass(frozen=True)
class Report:
    """The page written and how many of each kind of output it shows."""

    path: Path
    runs: int
    generated: int
    evaluations: int
    tables: int
    warnings: list[str]


def _checked_root(root: str | Path) -> Path:
    root = Path(root)
    if not root.exists():
        raise UserError(f"{root}: no such folder")
    if not root.is_dir():
        raise UserError(f"{root}: not a folder")
    return root


def _page_path(root: Path, out: str | Path | None) -> Path:
    page_path = Path(out) if out is not None else root / "report.html"
    return page_path / "report.html" if page_path.is_dir() else page_path


def _add_sections(page: Page, root: Path, found: Found) -> None:
    """Sweep tables first, then evaluations, runs and generated sets; last, what was passed over."""
    overview = root / OVERVIEW
    if overview.is_file() and root not in found.runs:
        page.add("Overview", "figures.html.j2", figures=[page.figure(overview, "contact sheet")])
    for folder in found.tables:
        add_results_section(page, folder, label(root, folder))
    add_evaluation_sections(page, found.evaluations)
    for run in found.runs:
        add_run_section(page, root, run)
    for folder in found.generated:
        try:
            add_generated_section(page, root, folder)
        except (UserError, ValueError, OSError) as error:
            # One damaged set (a truncated PNG, a broken record) must not take the rest of the page with it.
            page.warnings.append(f"{folder}: generated set not shown ({error})")
    if page.warnings:
        page.add("Skipped", "skipped.html.j2", warnings=page.warnings)


def write_report(root: str | Path, out: str | Path | None = None, *, max_depth: int = MAX_DEPTH) -> Report:
    """Write the HTML report of everything under `root` to `out` (default `root/report.html`)."""
    root = _checked_root(root)
    found = find_outputs(root, max_depth)
    if not found:
        reason = f"; skipped {found.skipped[0]}" if found.skipped else ""
        raise UserError(f"{root}: holds no run (config.json), generated set (meta.json), evaluation "
                        f"(metrics.json) or results table (results.csv; searched to depth {max_depth}){reason}")
    page = Page(_page_path(root, out))
    page.warnings.extend(found.skipped)
    _add_sections(page, root, found)
    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    document = page.render(f"dualanodiff report: {root.resolve().name}", str(root.resolve()), when)
    atomic_write(page.path, lambda tmp: tmp.write_text(document, encoding="utf-8"))
    return Report(page.path, len(found.runs), len(found.generated), len(found.evaluations), len(found.tables),
                  page.warnings)
