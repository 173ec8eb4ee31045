"""Progress bars also reach a log file: not disabled for want of a terminal, and not flooding it."""

import io

from dualanodiff import progress as progress_module
from dualanodiff.progress import LOG_INTERVAL_SECONDS, progress


def test_progress_into_a_file_says_where_it_is_without_flooding(monkeypatch):
    log = io.StringIO()  # not a terminal, like `dualanodiff evaluate ... 2> log`
    monkeypatch.setattr(progress_module.sys, "stderr", log)
    bar = progress(range(1000), desc="U-Net seed 0", unit="step", file=log)
    assert bar.mininterval == LOG_INTERVAL_SECONDS and not bar.disable
    for _ in bar:
        pass
    text = log.getvalue()
    assert "U-Net seed 0" in text and "1000/1000" in text
    assert text.count("U-Net seed 0") <= 3  # the first line, the last, not one per step
