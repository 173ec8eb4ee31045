"""`run_sweep`: every job not finished yet, on a backend, with progress; then the tables and the report."""

from __future__ import annotations

import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from dualanodiff.errors import UserError
from dualanodiff.sweep.backends import LocalBackend, RayBackend
from dualanodiff.sweep.jobs import JobOutcome, record_failure
from dualanodiff.sweep.plan import Job, plan_jobs
from dualanodiff.sweep.results import write_results
from dualanodiff.sweep.settings import SweepSettings

BACKENDS = ("local", "ray")
REPORT_FILE = "report.html"


@dataclass(frozen=True)
class SweepOutcome:
    jobs: int
    skipped: int  # finished before this run started
    done: int  # finished by this run
    failed: dict[str, str]  # job -> its error
    blocked: dict[str, str]  # job -> why it could not run
    seconds: float
    results_csv: Path
    results_md: Path
    report: Path | None
    results_kept: bool = False  # the tables there held more finished rows and this run ran nothing: kept


class Progress:
    """A bar (on a terminal) and one line per finished job: done / running / failed counts and the time left,
    estimated from the jobs this run has finished so far."""

    def __init__(self, total: int, skipped: int):
        self.total, self.skipped, self.running = total, skipped, 0
        self.counts = {"done": 0, "failed": 0, "blocked": 0}
        self.start = time.monotonic()
        self.bar = tqdm(total=total, initial=skipped, desc="sweep", unit="job", disable=None, dynamic_ncols=True)

    def _time_left(self) -> str:
        finished = sum(self.counts.values())
        if not finished:
            return "time left unknown yet"
        left = (time.monotonic() - self.start) / finished * (self.total - self.skipped - finished)
        return f"about {tqdm.format_interval(left)} left"

    def _summary(self) -> str:
        done = self.skipped + self.counts["done"]
        parts = [f"{done}/{self.total} done", f"{self.running} running", f"{self.counts['failed']} failed"]
        if self.counts["blocked"]:
            parts.append(f"{self.counts['blocked']} not run")
        return ", ".join(parts)

    def refresh(self, running: int) -> None:
        self.running = running
        self.bar.set_postfix_str(f"{self._summary()}, {self._time_left()}")

    def finish(self, job: Job, outcome: JobOutcome) -> None:
        self.counts[outcome.status] += 1
        self.running = max(self.running - 1, 0) if outcome.status != "blocked" else self.running
        self.bar.update(1)
        if outcome.status == "done":
            what = f"done {job.name} in {tqdm.format_interval(outcome.seconds)}"
            if outcome.attempts > 1:
                what += f" (attempt {outcome.attempts})"
        elif outcome.status == "failed":
            what = (f"FAILED {job.name} after {outcome.attempts} attempt(s): {outcome.error} "
                    f"(log: {job.log_path})")
        else:
            what = f"not run: {job.name}: {outcome.error}"
        tqdm.write(f"[{self._summary()}, {self._time_left()}] {what}", file=sys.stdout)
        self.refresh(self.running)

    def close(self) -> None:
        self.bar.close()


def drive(jobs: list[Job], backend: Any, states: dict[str, str], progress: Progress) -> dict[str, JobOutcome]:
    """Submit each job once the jobs it comes after have finished, until none is left; a job one of whose needed
    jobs did not finish is not run ("blocked")."""
    by_name = {job.name: job for job in jobs}
    outcomes: dict[str, JobOutcome] = {}
    waiting = [job for job in jobs if job.name not in states]
    while True:
        for job in list(waiting):
            if not all(name in states for name in job.after):
                continue
            waiting.remove(job)
            lost = [name for name in job.needs if states[name] != "done"]
            if lost:
                outcome = record_failure(job, f"needs {', '.join(lost)}, which did not finish", 0, "blocked")
                states[job.name], outcomes[job.name] = "blocked", outcome
                progress.finish(job, outcome)
            else:
                backend.submit(job)
        if not backend.in_flight():  # every job is done, failed or blocked
            return outcomes
        progress.refresh(backend.running())
        for outcome in backend.wait():
            states[outcome.name], outcomes[outcome.name] = outcome.status, outcome
            progress.finish(by_name[outcome.name], outcome)


def _backend(settings: SweepSettings, jobs: list[Job], backend: str, address: str | None, session: str) -> Any:
    if backend not in BACKENDS:
        raise UserError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if address is not None and backend != "ray":
        raise UserError("--address joins a Ray cluster: use it with --backend ray")
    if backend == "ray":
        return RayBackend(settings.gpus_per_job, settings.cpus_per_job, settings.retries, session, address)
    gpus = settings.gpus_per_job or 0
    if gpus > 1 and not _has_cuda():
        raise UserError(f"--gpus-per-job {gpus}: this machine has no GPU")
    return LocalBackend(jobs, gpus, settings.cpus_per_job, settings.retries, session)


def run_sweep(settings: SweepSettings, *, backend: str = "local", address: str | None = None) -> SweepOutcome:
    """Run every job not finished yet, then write SWEEP/results.csv, results.md and report.html.

    `backend="ray"` joins the cluster at `address`, or uses this process's Ray connection if it has one, or starts
    a local Ray instance (shut down again at the end)."""
    jobs = plan_jobs(settings)
    _refuse_to_redo_finished_jobs(jobs, settings.out)
    session = uuid.uuid4().hex
    runner = _backend(settings, jobs, backend, address, session)
    states = {job.name: "done" for job in jobs if job.is_complete()}
    out = settings.out.resolve()
    print(f"sweep of {len(jobs)} job(s) into {out} with the {backend} backend"
          + (f"; {len(states)} already done" if states else ""))
    start = time.monotonic()
    progress = Progress(len(jobs), len(states))
    interrupted = True
    try:
        outcomes = drive(jobs, runner, states, progress)
        interrupted = False
    finally:
        progress.close()
        runner.close(interrupted)
    results = write_results(out, jobs, ran_jobs=bool(outcomes))
    if results.kept:
        print(f"warning: {results.csv} and {results.md} hold more finished rows than this sweep's and no job ran: "
              "kept as they are", file=sys.stderr)
    report = (out / REPORT_FILE if (out / REPORT_FILE).is_file() else None) if results.kept else _write_report(out)
    failed = {name: o.error for name, o in outcomes.items() if o.status == "failed"}
    blocked = {name: o.error for name, o in outcomes.items() if o.status == "blocked"}
    done = sum(o.status == "done" for o in outcomes.values())
    return SweepOutcome(len(jobs), len(jobs) - len(outcomes), done, failed, blocked, time.monotonic() - start,
                        results.csv, results.md, report, results.kept)


def _refuse_to_redo_finished_jobs(jobs: list[Job], out: Path) -> None:
    """A finished job planned with other calls (another --num, other settings) is refused, never redone: its
    outputs are finished work, and results.csv / results.md / report.html hold their figures."""
    changed = [job for job in jobs if job.status().get("status") == "done"
               and job.status().get("fingerprint") != job.fingerprint and job.outputs_exist()]
    if changed:
        names = ", ".join(job.name for job in changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3
                                                              else "")
        folders = [str(path) for path in (changed[0].output(stage) for stage in ("train", "generate",
                                                                                   "evaluate_localization")) if path]
        raise UserError(f"{out}: finished job(s) {names} were made with other settings than these; sweep into "
                        f"another --out, or delete their folders ({', '.join(folders)}) to make them again")


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _write_report(out: Path) -> Path | None:
    from dualanodiff.report import write_report

    try:
        return write_report(out).path
    except UserError as error:  # nothing finished yet to show
        print(f"warning: no report: {error}", file=sys.stderr)
        return None
