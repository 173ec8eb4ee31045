"""`dualanodiff sweep`: the benchmark, one model per (object, anomaly type), on this machine or on a Ray cluster.

A job runs the commands a person would type, so any job can be repeated by hand from its status file:

    "washer/rust"          dualanodiff train --data ROOT --object washer --anomaly rust --out SWEEP/runs/washer/rust
                               ... --resume
                           dualanodiff generate SWEEP/runs/washer/rust --out SWEEP/generated/washer/rust --num N ...
    "washer: evaluation"   (once every type of washer is done)
                           dualanodiff evaluate localization --data ROOT --object washer --out SWEEP/eval/washer
                               --generated SWEEP/generated/washer/crack --generated SWEEP/generated/washer/rust ...

SWEEP also holds jobs/ (one status file per job), logs/ (each job's output), results.csv and results.md (the paper's
columns per object, and the generation figures per type) and report.html.

Backends: `local` runs the jobs one after another in this process; `ray` makes each job a Ray task that asks for its
GPUs and CPUs, so a cluster runs as many at once as it has room for (Ray is imported only then). A job with several
GPUs runs train and generate under `accelerate launch --num_processes G` (data-parallel training; generation shards
the sample indices). On a cluster, the data set, SWEEP and the working folder must be on a file system that every node
sees under the same path, and every node needs dualanodiff installed.

Resuming: a job counts as finished only when its status file says "done" for the same commands; that file is written
last, after the job's outputs. A re-run skips finished jobs and continues the others (train and generate resume by
themselves). A job that raises is retried `retries` times, then recorded as failed, and the others go on; errors in
the input (the one-line `error:` messages) fail at once, since a retry would meet them again.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import io
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

import numpy as np
from tqdm.auto import tqdm

from dualanodiff.data import load_source
from dualanodiff.errors import UserError
from dualanodiff.io import atomic_write, read_json, write_json

BACKENDS = ("local", "ray")
METRICS = (("pixel_auroc", "pixel AUROC"), ("pixel_ap", "pixel AP"), ("pixel_f1_max", "pixel F1-max"),
           ("image_auroc", "image AUROC"), ("image_ap", "image AP"), ("image_f1_max", "image F1-max"))
# The per-sample means `generate` writes into a GEN's summary, pooled over types weighted by their samples.
GENERATION_MEANS = ("mean_mask_area", "mean_branch_agreement", "mean_background_preservation")
CACHE_VARIABLE = "DUALANODIFF_CACHE"  # where the tiny preset keeps the base models it pre-trains
INTERRUPTED = 130  # the exit status of a command stopped by Ctrl-C
_REFRESH_SECONDS = 2.0  # how often the Ray backend looks at its running jobs


@dataclass(frozen=True)
class SweepSettings:
    """What to run. `train_args`, `generate_args` and `evaluate_args` are further options of `dualanodiff train`,
    `generate` and `evaluate localization` (e.g. ("--steps", "100")), handed to every job as they are."""

    data: Path
    out: Path
    layout: Path | None = None
    objects: tuple[str, ...] = ()  # empty: every object of the data set
    anomalies: tuple[str, ...] = ()  # empty: every anomaly type
    num: int = 1000
    train_args: tuple[str, ...] = ()
    generate_args: tuple[str, ...] = ()
    evaluate_args: tuple[str, ...] = ()
    gpus_per_job: int | None = None  # None: 1 on a Ray cluster with GPUs, else 0
    cpus_per_job: int | None = None  # None: Ray's default of 1; the local backend leaves torch's threads alone
    retries: int = 1

    def __post_init__(self) -> None:
        for name, least in (("num", 1), ("retries", 0), ("gpus_per_job", 0), ("cpus_per_job", 1)):
            value = getattr(self, name)
            if value is not None and value < least:
                raise UserError(f"--{name.replace('_', '-')} must be at least {least}, got {value}")


@dataclass(frozen=True)
class Step:
    args: tuple[str, ...]  # a dualanodiff command line, without the program name
    distributed: bool = False  # runs under `accelerate launch` when the job has several GPUs

    def text(self) -> str:
        return shlex.join(("dualanodiff", *self.args))


@dataclass(frozen=True)
class Job:
    name: str  # "washer/rust", or "washer: evaluation"
    object: str
    anomaly: str | None  # None for the object's evaluation
    steps: tuple[Step, ...]
    outputs: tuple[Path, ...]  # files a finished job has made
    status_path: Path
    log_path: Path
    workdir: Path  # where relative paths in the commands point
    env: tuple[tuple[str, str], ...]
    after: tuple[str, ...] = ()  # the jobs that must be done first
    fingerprint: tuple[str, ...] = ()  # its commands and those of the jobs it needs: what "done" was done for

    @property
    def commands(self) -> list[str]:
        return [step.text() for step in self.steps]

    def status(self) -> dict[str, Any]:
        """The job's status file, or {} when there is none (or an unreadable one)."""
        try:
            status = read_json(self.status_path)
        except (OSError, ValueError):
            return {}
        return status if isinstance(status, dict) else {}

    def is_complete(self) -> bool:
        status = self.status()
        return (status.get("status") == "done" and status.get("fingerprint") == list(self.fingerprint)
                and all(path.exists() for path in self.outputs))


@dataclass(frozen=True)
class JobOutcome:
    name: str
    status: str  # done, failed or blocked
    attempts: int = 0
    seconds: float = 0.0
    error: str = ""


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


# ----------------------------------------------------------------------------------------------------------
# Planning


def _option_value(args: Sequence[str], option: str) -> str | None:
    for position, arg in enumerate(args):
        if arg == option and position + 1 < len(args):
            return args[position + 1]
        if arg.startswith(f"{option}="):
            return arg.split("=", 1)[1]
    return None


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def _selected_types(settings: SweepSettings) -> dict[str, list[str]]:
    """Object -> the anomaly types to run, as the data set has them and the settings pick them."""
    source = load_source(settings.data, settings.layout)
    objects = list(settings.objects) or source.objects()
    available = {name: source.anomaly_types(name) for name in objects}  # an unknown object: one-line DataError
    if settings.anomalies:
        known = {anomaly for types in available.values() for anomaly in types}
        unknown = [anomaly for anomaly in settings.anomalies if anomaly not in known]
        if unknown:
            raise UserError(f"--anomalies: no selected object has the type(s) {', '.join(unknown)} "
                            f"(types: {', '.join(sorted(known))})")
        available = {name: [a for a in types if a in settings.anomalies] for name, types in available.items()}
    selected = {name: types for name, types in available.items() if types}
    if not selected:
        raise UserError(f"{settings.data}: no (object, anomaly type) to run")
    return selected


def plan_jobs(settings: SweepSettings) -> list[Job]:
    """One train + generate job per (object, anomaly type), then one evaluation job per object."""
    out, data = settings.out.resolve(), settings.data.resolve()
    source_args = ("--data", str(data), *(("--layout", str(settings.layout.resolve())) if settings.layout else ()))
    # The tiny preset pre-trains each object's base model unless --base-model names one: the object's first job
    # does it, into a cache every node can read, and the object's other jobs take it from there.
    shared_base = (_option_value(settings.train_args, "--preset") or "tiny") == "tiny" and \
        _option_value(settings.train_args, "--base-model") is None
    env = ((CACHE_VARIABLE, os.environ.get(CACHE_VARIABLE, str(out / "cache"))),)
    common = {"workdir": Path.cwd(), "env": env}
    jobs: list[Job] = []
    for name, types in _selected_types(settings).items():
        object_jobs, generated = [], []
        for anomaly in types:
            run, gen = out / "runs" / name / anomaly, out / "generated" / name / anomaly
            generated += ["--generated", str(gen)]
            train = Step(("train", *source_args, "--object", name, "--anomaly", anomaly, "--out", str(run),
                          *settings.train_args, "--resume"), distributed=True)
            generate = Step(("generate", str(run), "--out", str(gen), "--num", str(settings.num),
                             *settings.generate_args), distributed=True)
            after = (object_jobs[0].name,) if shared_base and object_jobs else ()
            job = Job(f"{name}/{anomaly}", name, anomaly, (train, generate),
                      outputs=(run / "weights.safetensors", gen / "meta.json"),
                      status_path=out / "jobs" / "generate" / name / f"{anomaly}.json",
                      log_path=out / "logs" / "generate" / name / f"{anomaly}.log", after=after, **common)
            object_jobs.append(_fingerprinted(job, object_jobs))
        evaluation = Step(("evaluate", "localization", *source_args, "--object", name,
                           "--out", str(out / "eval" / name), *generated, *settings.evaluate_args))
        job = Job(f"{name}: evaluation", name, None, (evaluation,), outputs=(out / "eval" / name / "metrics.json",),
                  status_path=out / "jobs" / "evaluate" / f"{name}.json",
                  log_path=out / "logs" / "evaluate" / f"{name}.log",
                  after=tuple(job.name for job in object_jobs), **common)
        jobs += [*object_jobs, _fingerprinted(job, object_jobs)]
    return jobs


def _fingerprinted(job: Job, upstream: list[Job]) -> Job:
    needed = [other for other in upstream if other.name in job.after]
    return replace(job, fingerprint=(*job.commands, *(command for other in needed for command in other.fingerprint)))


# ----------------------------------------------------------------------------------------------------------
# Running one job (the body of a Ray task, or called by the local backend)


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    message = lines[0] if lines else ""
    if isinstance(error, UserError):
        return message
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


@contextlib.contextmanager
def _job_surroundings(job: Job, log: IO[str]) -> Iterator[None]:
    """The job's working folder and environment, and this process's output (file descriptors 1 and 2, so that
    every library's messages and progress bars are caught) into the job's log."""
    saved_folder, saved_env = os.getcwd(), {key: os.environ.get(key) for key, _ in job.env}
    for stream in (sys.stdout, sys.stderr, log):
        stream.flush()
    saved_fds = [os.dup(1), os.dup(2)]
    os.chdir(job.workdir)
    os.environ.update(dict(job.env))
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        for fd, saved in zip((1, 2), saved_fds, strict=True):
            os.dup2(saved, fd)
            os.close(saved)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        os.chdir(saved_folder)


def _run_here(step: Step) -> None:
    """The command in this process, through the same CLI a person uses."""
    import typer

    from dualanodiff.cli import app

    try:
        status = app(args=list(step.args), prog_name="dualanodiff", standalone_mode=False)
    except typer.Abort:
        raise KeyboardInterrupt from None
    except typer.TyperException as error:  # the command line itself was refused
        raise UserError(f"`{step.text()}`: {error.format_message()}") from None
    if status == INTERRUPTED:  # typer turns a KeyboardInterrupt inside the command into this status
        raise KeyboardInterrupt
    if isinstance(status, int) and status:
        raise RuntimeError(f"`{step.text()}` exited with status {status}")


def _accelerate_command(step: Step, gpus: int) -> list[str]:
    """`accelerate launch` of the step on `gpus` GPUs of this node (an accelerate config file, if any, still
    applies)."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(gpus),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "-m", "dualanodiff", *step.args]


def _run_launched(step: Step, gpus: int, job: Job, log: IO[str]) -> None:
    """The command under `accelerate launch`, in its own process group so that an interruption ends all of it."""
    command = _accelerate_command(step, gpus)
    log.write(f"$ {shlex.join(command)}\n")
    log.flush()
    start = log.tell()
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=job.workdir,
                               env={**os.environ, **dict(job.env)}, start_new_session=True)
    try:
        code = process.wait()
    except BaseException:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait()
        raise
    if code:
        with open(job.log_path, errors="replace") as output:
            output.seek(start)
            refusals = [line[len("error: "):].strip() for line in output if line.startswith("error: ")]
        if refusals:  # the command refused its input: a retry would meet the same
            raise UserError(f"`{step.text()}`: {refusals[-1]}")
        raise RuntimeError(f"`{step.text()}` under accelerate launch exited with status {code}")


def run_job(job: Job, *, gpus: int, cpus: int | None, retries: int, session: str) -> JobOutcome:
    """Run the job's commands, retrying up to `retries` times; the status file is written last."""
    if cpus is not None:
        import torch

        torch.set_num_threads(cpus)  # jobs sharing a node must not each use all of its cores
    started = time.monotonic()
    job.log_path.parent.mkdir(parents=True, exist_ok=True)
    record = {"job": job.name, "commands": job.commands, "log": str(job.log_path)}
    error, attempt = "", 0
    for attempt in range(1, retries + 2):
        write_json(job.status_path, {**record, "status": "running", "attempt": attempt, "session": session,
                                     "host": socket.gethostname(), "pid": os.getpid(), "started": _now()})
        with open(job.log_path, "a") as log:
            log.write(f"\n=== {job.name}: attempt {attempt} of {retries + 1}, {_now()}, {socket.gethostname()}\n")
            try:
                with _job_surroundings(job, log):
                    for step in job.steps:
                        if step.distributed and gpus > 1:
                            _run_launched(step, gpus, job, log)
                        else:
                            _run_here(step)
            except UserError as refusal:
                error = _one_line(refusal)
                log.write(f"error: {error}\n")
                break
            except Exception as failure:
                error = _one_line(failure)
                traceback.print_exc(file=log)
                continue
        seconds = time.monotonic() - started
        write_json(job.status_path, {**record, "status": "done", "fingerprint": list(job.fingerprint),
                                     "attempts": attempt, "seconds": seconds, "gpus": gpus,
                                     "host": socket.gethostname(), "pid": os.getpid(), "finished": _now()})
        return JobOutcome(job.name, "done", attempt, seconds)
    seconds = time.monotonic() - started
    write_json(job.status_path, {**record, "status": "failed", "error": error, "attempts": attempt,
                                 "seconds": seconds, "finished": _now()})
    return JobOutcome(job.name, "failed", attempt, seconds, error)


# ----------------------------------------------------------------------------------------------------------
# Backends: `submit` a job whose predecessors are done, `wait` for some to finish


class _LocalBackend:
    """One job at a time, in this process, in the planned order (so an object is evaluated as soon as it can be)."""

    def __init__(self, jobs: list[Job], gpus: int, cpus: int | None, retries: int, session: str):
        self.options = {"gpus": gpus, "cpus": cpus, "retries": retries, "session": session}
        self.order = {job.name: position for position, job in enumerate(jobs)}
        self.queue: list[Job] = []

    def submit(self, job: Job) -> None:
        self.queue.append(job)

    def in_flight(self) -> int:
        return len(self.queue)

    def running(self) -> int:
        return min(len(self.queue), 1)  # `wait` runs the next one

    def wait(self) -> list[JobOutcome]:
        job = min(self.queue, key=lambda queued: self.order[queued.name])
        self.queue.remove(job)
        return [run_job(job, **self.options)]

    def close(self, interrupted: bool) -> None:
        self.queue.clear()


class _RayBackend:
    """Each job a Ray task asking for its GPUs and CPUs; Ray re-runs a task whose worker or node died."""

    def __init__(self, gpus: int | None, cpus: int | None, retries: int, session: str, address: str | None):
        try:
            import ray
        except ImportError:
            raise UserError("--backend ray needs Ray: pip install 'dualanodiff[ray]'") from None
        self.ray = ray
        self.started_here = not ray.is_initialized()
        if self.started_here:
            if address is None:  # a local cluster of this machine's CPUs and GPUs
                ray.init(include_dashboard=False, logging_level="warning")
            else:
                try:
                    ray.init(address=address, logging_level="warning")
                except (ConnectionError, ValueError, RuntimeError) as error:
                    raise UserError(f"--address {address}: cannot join the Ray cluster ({_one_line(error)})") \
                        from None
        if gpus is None:
            gpus = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
        self.gpus, self.cpus, self.retries, self.session = gpus, cpus or 1, retries, session
        nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
        if not any(node.get("GPU", 0) >= gpus and node.get("CPU", 0) >= self.cpus for node in nodes):
            print(f"warning: no node of the Ray cluster has {gpus} GPU(s) and {self.cpus} CPU(s) now; the jobs "
                  "wait until one joins", file=sys.stderr)
        self.task = ray.remote(run_job)
        self.refs: dict[Any, Job] = {}

    def submit(self, job: Job) -> None:
        gpus = self.gpus if job.anomaly is not None else min(self.gpus, 1)  # evaluation runs on one device
        ref = self.task.options(num_gpus=gpus, num_cpus=self.cpus, max_retries=self.retries,
                                name=f"dualanodiff {job.name}").remote(
            job, gpus=gpus, cpus=self.cpus, retries=self.retries, session=self.session)
        self.refs[ref] = job

    def in_flight(self) -> int:
        return len(self.refs)

    def running(self) -> int:
        """Submitted jobs whose status file says this sweep started them (the others still wait for room)."""
        statuses = [job.status() for job in self.refs.values()]
        return sum(s.get("status") == "running" and s.get("session") == self.session for s in statuses)

    def wait(self) -> list[JobOutcome]:
        ready, _ = self.ray.wait(list(self.refs), num_returns=1, timeout=_REFRESH_SECONDS)
        if ready:  # and whatever else is finished by now
            ready, _ = self.ray.wait(list(self.refs), num_returns=len(self.refs), timeout=0)
        outcomes = []
        for ref in ready:
            job = self.refs.pop(ref)
            try:
                outcomes.append(self.ray.get(ref))
            except self.ray.exceptions.RayError as error:  # the task's worker or node died, or it was cancelled
                outcomes.append(_record_failure(job, _one_line(error), self.retries + 1))
        return outcomes

    def close(self, interrupted: bool) -> None:
        if interrupted:
            for ref in self.refs:
                self.ray.cancel(ref)  # a KeyboardInterrupt inside the job: its finished work stays
        if self.started_here:
            self.ray.shutdown()


def _record_failure(job: Job, error: str, attempts: int, status: str = "failed") -> JobOutcome:
    write_json(job.status_path, {"job": job.name, "status": status, "error": error, "attempts": attempts,
                                 "commands": job.commands, "log": str(job.log_path), "finished": _now()})
    return JobOutcome(job.name, status, attempts, error=error)


# ----------------------------------------------------------------------------------------------------------
# The sweep


class _Progress:
    """A bar (on a terminal) and one line per finished job: done / running / failed counts and the time left,
    estimated from the jobs this run has finished so far."""

    def __init__(self, total: int, skipped: int):
        self.total, self.skipped, self.running = total, skipped, 0
        self.counts = {"done": 0, "failed": 0, "blocked": 0}
        self.start = time.monotonic()
        self.bar = tqdm(total=total, initial=skipped, desc="sweep", unit="job", disable=None, dynamic_ncols=True)

    def _finished(self) -> int:
        return sum(self.counts.values())

    def _time_left(self) -> str:
        finished = self._finished()
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

    def note(self, text: str) -> None:
        tqdm.write(text, file=sys.stdout)

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
        self.note(f"[{self._summary()}, {self._time_left()}] {what}")
        self.refresh(self.running)

    def close(self) -> None:
        self.bar.close()


def _drive(jobs: list[Job], backend: Any, states: dict[str, str], progress: _Progress) -> dict[str, JobOutcome]:
    """Submit each job once the jobs it needs are done, until none is left; a job whose predecessor failed is
    blocked."""
    by_name = {job.name: job for job in jobs}
    outcomes: dict[str, JobOutcome] = {}
    waiting = [job for job in jobs if job.name not in states]
    while True:
        for job in list(waiting):
            needed = {name: states.get(name) for name in job.after}
            lost = [name for name, state in needed.items() if state in ("failed", "blocked")]
            if lost:
                waiting.remove(job)
                outcome = _record_failure(job, f"needs {', '.join(lost)}, which did not finish", 0, "blocked")
                states[job.name], outcomes[job.name] = "blocked", outcome
                progress.finish(job, outcome)
            elif all(state == "done" for state in needed.values()):
                waiting.remove(job)
                backend.submit(job)
        if not backend.in_flight():  # every job is done, failed or blocked
            return outcomes
        progress.refresh(backend.running())
        for outcome in backend.wait():
            states[outcome.name], outcomes[outcome.name] = outcome.status, outcome
            progress.finish(by_name[outcome.name], outcome)


def run_sweep(settings: SweepSettings, *, backend: str = "local", address: str | None = None) -> SweepOutcome:
    """Run every job not finished yet, then write SWEEP/results.csv, results.md and report.html.

    `backend="ray"` joins the cluster at `address`, or uses this process's Ray connection if it has one, or starts
    a local Ray instance (shut down again at the end)."""
    if backend not in BACKENDS:
        raise UserError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if address is not None and backend != "ray":
        raise UserError("--address joins a Ray cluster: use it with --backend ray")
    jobs = plan_jobs(settings)
    session = uuid.uuid4().hex
    states = {job.name: "done" for job in jobs if job.is_complete()}
    out = settings.out.resolve()
    print(f"sweep of {len(jobs)} job(s) into {out} with the {backend} backend"
          + (f"; {len(states)} already done" if states else ""))
    start = time.monotonic()
    if backend == "local":
        gpus = settings.gpus_per_job or 0
        if gpus > 1 and not _has_cuda():
            raise UserError(f"--gpus-per-job {gpus}: this machine has no GPU")
        runner: Any = _LocalBackend(jobs, gpus, settings.cpus_per_job, settings.retries, session)
    else:
        runner = _RayBackend(settings.gpus_per_job, settings.cpus_per_job, settings.retries, session, address)
    progress = _Progress(len(jobs), len(states))
    interrupted = True
    try:
        outcomes = _drive(jobs, runner, states, progress)
        interrupted = False
    finally:
        progress.close()
        runner.close(interrupted)
    results_csv, results_md = write_results(out, jobs)
    report = _write_report(out)
    failed = {name: o.error for name, o in outcomes.items() if o.status == "failed"}
    blocked = {name: o.error for name, o in outcomes.items() if o.status == "blocked"}
    done = sum(o.status == "done" for o in outcomes.values())
    return SweepOutcome(len(jobs), len(jobs) - len(outcomes), done, failed, blocked, time.monotonic() - start,
                        results_csv, results_md, report)


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


# ----------------------------------------------------------------------------------------------------------
# Results


def _read_object(path: Path) -> dict[str, Any]:
    try:
        data = read_json(path)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _pooled(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Generation figures of several types together: counts added, means weighted by samples."""
    samples = [s.get("samples", 0) for s in summaries]
    pooled: dict[str, Any] = {"samples": sum(samples), "empty_masks": sum(s.get("empty_masks", 0) for s in summaries)}
    for key in GENERATION_MEANS:
        present = [(s[key], n) for s, n in zip(summaries, samples, strict=True) if s.get(key) is not None and n]
        if present:
            pooled[key] = float(np.average([v for v, _ in present], weights=[n for _, n in present]))
    return pooled


def result_rows(jobs: Sequence[Job]) -> list[dict[str, Any]]:
    """Per object: its evaluation row (anomaly "(all)") and one row per anomaly type; then the mean over objects."""
    rows, object_rows, all_summaries = [], [], []
    for name in dict.fromkeys(job.object for job in jobs):
        evaluation = next(job for job in jobs if job.object == name and job.anomaly is None)
        status = evaluation.status()
        metrics = _read_object(evaluation.outputs[0]) if status.get("status") == "done" else {}
        type_rows, summaries = [], []
        for job in jobs:
            if job.object != name or job.anomaly is None:
                continue
            job_status = job.status()
            summary = _read_object(job.outputs[1]).get("summary", {}) if job_status.get("status") == "done" else {}
            summaries.append(summary)
            type_rows.append({"object": name, "anomaly": job.anomaly, "status": job_status.get("status", "not run"),
                              **{key: metrics.get("per_type", {}).get(job.anomaly, {}).get(key)
                                 for key, _ in METRICS},
                              **summary, "seconds": job_status.get("seconds"), "error": job_status.get("error", "")})
        all_summaries += summaries
        object_row = {"object": name, "anomaly": "(all)", "status": status.get("status", "not run"),
                      **{key: metrics.get(key) for key, _ in METRICS}, **_pooled(summaries),
                      "seconds": status.get("seconds"), "error": status.get("error", "")}
        object_rows.append(object_row)
        rows += [object_row, *type_rows]
    evaluated = [row for row in object_rows if row["pixel_auroc"] is not None]
    mean = {"object": "mean", "anomaly": "(all)",
            "status": f"{len(evaluated)} of {len(object_rows)} objects evaluated",
            **{key: float(np.mean([row[key] for row in evaluated])) if evaluated else None for key, _ in METRICS},
            **_pooled(all_summaries), "seconds": None, "error": ""}
    return [*rows, mean]


CSV_COLUMNS = ("object", "anomaly", "status", *(key for key, _ in METRICS), "samples", "empty_masks",
               *GENERATION_MEANS, "seconds", "error")


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    return round(value, 4) if isinstance(value, float) else value


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _markdown(header: Sequence[str], rows: list[list[str]], right_from: int) -> list[str]:
    lines = ["| " + " | ".join(header) + " |",
             "| " + " | ".join("---" if i < right_from else "---:" for i in range(len(header))) + " |"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def write_results(out: str | Path, jobs: Sequence[Job]) -> tuple[Path, Path]:
    """SWEEP/results.csv (every row, fractions) and SWEEP/results.md (the paper's table in percent, the generation
    figures per type, and what failed)."""
    out = Path(out)
    rows = result_rows(jobs)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows({key: _csv_value(row.get(key)) for key in CSV_COLUMNS} for row in rows)
    csv_path = atomic_write(out / "results.csv", lambda tmp: tmp.write_text(buffer.getvalue()))

    object_rows = [row for row in rows if row["anomaly"] == "(all)"]
    table = [[row["object"], *(_percent(row[key]) for key, _ in METRICS)] for row in object_rows]
    table[-1] = [f"**{cell}**" for cell in table[-1]]
    lines = [f"# Sweep results: {out.name}", "",
             "Localization and detection (percent) on the held-out real images: DRAEM's U-Net trained on the "
             "generated pairs of all the object's types plus its normal images (`dualanodiff evaluate localization`).",
             "", *_markdown(["object", *(title for _, title in METRICS)], table, 1), "",
             "Generation, per anomaly type (`dualanodiff generate`):", ""]
    generation = []
    for row in rows:
        if row["anomaly"] == "(all)":
            continue
        generation.append([row["object"], row["anomaly"], row["status"], str(row.get("samples", "–")),
                           str(row.get("empty_masks", "–")), _percent(row.get("mean_mask_area")),
                           _percent(row.get("mean_branch_agreement")),
                           _percent(row.get("mean_background_preservation")),
                           tqdm.format_interval(row["seconds"]) if row["seconds"] is not None else "–"])
    lines += _markdown(["object", "anomaly", "status", "samples", "empty masks", "mask area %",
                        "branch agreement %", "background preservation %", "train + generate time"], generation, 3)
    problems = [f"- {row['object']}" + (f"/{row['anomaly']}" if row["anomaly"] != "(all)" else " evaluation")
                + f": {row['status']}: {row['error']}" for row in rows if row["error"]]
    if problems:
        lines += ["", "Not finished (each job's output is under logs/, its status under jobs/):", "", *problems]
    if jobs:
        lines += ["", "Commands of the first job (every job's are in its status file under jobs/):", "",
                  *(f"    {command}" for command in jobs[0].commands)]
    text = "\n".join(lines) + "\n"
    md_path = atomic_write(out / "results.md", lambda tmp: tmp.write_text(text))
    return csv_path, md_path
