"""Progress bars that also serve a log file: on a terminal they redraw ten times a second, into a file (a sweep
job's log, `cmd > log 2>&1`) they write a line every half minute instead of staying silent or flooding it."""

from __future__ import annotations

import sys
from typing import Any

from tqdm.auto import tqdm

LOG_INTERVAL_SECONDS = 30.0


def progress(iterable: Any = None, **options: Any) -> tqdm:
    """`tqdm(iterable, **options)`, never disabled for want of a terminal."""
    if not sys.stderr.isatty():
        options.setdefault("mininterval", LOG_INTERVAL_SECONDS)
        options.setdefault("ascii", True)
    return tqdm(iterable, **options)
