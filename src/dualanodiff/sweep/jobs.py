"""Running one sweep job (the body of a Ray task, or called by the local backend).

The job's status file is written before anything runs, with status "running" and the job's stage calls, so that
it replays the job by hand (`dualanodiff train --config STATUS`, then `dualanodiff generate --config STATUS`);
"done" is written last, after the outputs. The calls run through the Python API in this process, or, on
several GPUs, train and generate under `accelerate launch ... -m dualanodiff STAGE --config STATUS`.
A train or generate call whose output is finished and was made by the same call is not run again (a job that
failed in generate does not train again). Nothing is ever deleted: a finished job planned with other calls is
refused before the sweep starts (`run.run_sweep`), and an unfinished one meets train's and generate's own refusal
of folders made with other settings.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from dualanodiff.errors import UserError, first_line
from dualanodiff.io import write_json
from dualanodiff.stages import StageCall, run_call
from dualanodiff.sweep.plan import GENERATE, TRAIN, Job, stage_finished

DISTRIBUTED = (TRAIN, GENERATE)  # the stages that run under `accelerate launch` when a job has several GPUs


@dataclass(frozen=True)
class JobOutcome:
    name: str
    status: str  # done, failed or blocked
    attempts: int = 0
    seconds: float = 0.0
    error: str = ""


def now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def one_line(error: BaseException) -> str:
    """A user error's message, or the exception's type and first line."""
    message = first_line(error)
    if isinstance(error, UserError) or message == type(error).__name__:
        return message
    return f"{type(error).__name__}: {message}"


def job_record(job: Job, status: str, **fields: Any) -> dict[str, Any]:
    """The status file's content: what the job is (its calls, enough to replay it) and where it stands."""
    return {"job": job.name, "status": status, **fields, "fingerprint": job.fingerprint,
            "calls": [call.to_dict() for call in job.calls], "commands": job.commands,
            "env": dict(job.env), "workdir": str(job.workdir), "log": str(job.log_path)}


def record_failure(job: Job, error: str, attempts: int, status: str = "failed") -> JobOutcome:
    write_json(job.status_path, job_record(job, status, error=error, attempts=attempts, finished=now()))
    return JobOutcome(job.name, status, attempts, error=error)


@contextlib.contextmanager
def _surroundings(job: Job, log: IO[str]) -> Iterator[None]:
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


def accelerate_command(call: StageCall, gpus: int, config_path: Path) -> list[str]:
    """`accelerate launch` of the call on `gpus` GPUs of this node (an accelerate config file, if any, still
    applies); the launched processes read the call from `config_path`."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(gpus),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "-m", "dualanodiff", *call.command(config_path)]


def _run_launched(call: StageCall, gpus: int, job: Job, log: IO[str]) -> None:
    """The call under `accelerate launch`, in its own process group so that an interruption ends all of it."""
    command = accelerate_command(call, gpus, job.status_path)
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
        words = " ".join(call.command(job.status_path))
        if refusals:  # the command refused its input: a retry would meet the same
            raise UserError(f"`dualanodiff {words}`: {refusals[-1]}")
        raise RuntimeError(f"`dualanodiff {words}` under accelerate launch exited with status {code}")


def _unchanged(job: Job, previous: dict[str, Any]) -> list[str]:
    """The stages of the job's leading calls that equal those of its previous status file: what their output
    folders hold was made by the same calls (a call after a changed one counts as changed: it reads its output)."""
    made = {call.get("stage"): call for call in previous.get("calls") or [] if isinstance(call, dict)}
    unchanged = []
    for call in job.calls:
        if made.get(call.stage) != json.loads(json.dumps(call.to_dict())):
            break
        unchanged.append(call.stage)
    return unchanged


def _attempt(job: Job, gpus: int, log: IO[str], trusted: Collection[str]) -> None:
    """The job's calls; a train or generate call of a `trusted` stage whose output is finished is not run again."""
    with _surroundings(job, log):
        for call in job.calls:
            if call.stage in DISTRIBUTED and call.stage in trusted and stage_finished(call):
                print(f"{call.stage}: {call.arguments['out']} is finished, by the same call: kept")
            elif call.stage in DISTRIBUTED and gpus > 1:
                _run_launched(call, gpus, job, log)
            else:
                run_call(call)


def run_job(job: Job, *, gpus: int, cpus: int | None, retries: int, session: str) -> JobOutcome:
    """Run the job's calls, retrying up to `retries` times; "done" goes into the status file last."""
    if cpus is not None:
        import torch

        torch.set_num_threads(cpus)  # jobs sharing a node must not each use all of its cores
    started = time.monotonic()
    job.log_path.parent.mkdir(parents=True, exist_ok=True)
    previous = job.status()
    trusted = _unchanged(job, previous)
    error, attempt = "", 0
    for attempt in range(1, retries + 2):
        write_json(job.status_path, job_record(job, "running", attempt=attempt, session=session,
                                               host=socket.gethostname(), pid=os.getpid(), started=now()))
        with open(job.log_path, "a") as log:
            log.write(f"\n=== {job.name}: attempt {attempt} of {retries + 1}, {now()}, {socket.gethostname()}\n")
            try:
                _attempt(job, gpus, log, trusted if attempt == 1 else DISTRIBUTED)
            except UserError as refusal:  # the input itself: a retry would meet it again
                error = one_line(refusal)
                log.write(f"error: {error}\n")
                break
            except Exception as failure:
                error = one_line(failure)
                traceback.print_exc(file=log)
                continue
        seconds = time.monotonic() - started
        write_json(job.status_path, job_record(job, "done", attempts=attempt, seconds=seconds, gpus=gpus,
                                               host=socket.gethostname(), pid=os.getpid(), finished=now()))
        return JobOutcome(job.name, "done", attempt, seconds)
    seconds = time.monotonic() - started
    write_json(job.status_path, job_record(job, "failed", error=error, attempts=attempt, seconds=seconds,
                                           finished=now()))
    return JobOutcome(job.name, "failed", attempt, seconds, error)
