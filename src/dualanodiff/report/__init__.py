"""`dualanodiff report DIR`: one self-contained HTML page for training runs, generated sets, evaluations and sweeps.

The page (`DIR/report.html` by default) uses inline CSS and relative links only, so it opens offline and can
be copied together with the folder. Pictures the report draws itself (contact sheets of generated sets, loss
curves from `loss.csv`, confusion matrices) go to `report_files/` beside the page; input folders are never
written to. Every fraction (metrics, mask areas, agreements) is shown in percent with one decimal.

DIR may be a RUN, a GEN, an evaluation folder, or any folder holding those (a demo or sweep folder), which is
searched a few levels deep. Folders are recognised by their files:

    RUN         config.json with a run's settings, or training files beside it (`Run.is_run`)
    GEN         meta.json with "format": "dualanodiff-generated/1"
    evaluation  metrics.json with "kind": "localization" | "classification" | "quality"
    results     results.csv (a sweep's table; its results.md is never read)

Modules: find (the walk), run (RUN folders), results (sweep tables), evaluations, sections (runs and generated
sets), values (units and number formats), page (sections, links, templates), build (`write_report`).
"""

from dualanodiff.report.build import Report, write_report
from dualanodiff.report.find import MAX_DEPTH, Evaluation, Found, find_outputs

__all__ = ["MAX_DEPTH", "Evaluation", "Found", "Report", "find_outputs", "write_report"]
