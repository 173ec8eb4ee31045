"""Planning a sweep: one job per (object, anomaly type) that trains and generates, then one evaluation per object.

A job is a list of stage calls (`dualanodiff.stages.StageCall`) with absolute paths, so that its status file
alone replays it from any folder. Its fingerprint is a digest of its calls and those of the jobs it needs: a job
counts as finished only when its status file says "done" for the same fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dualanodiff.data import load_source
from dualanodiff.errors import UserError
from dualanodiff.evaluate.settings import METRICS_FILE
from dualanodiff.generation.generated_set import GeneratedSet
from dualanodiff.io import read_json
from dualanodiff.stages import StageCall
from dualanodiff.sweep.settings import SweepSettings
from dualanodiff.training.run import Run

CACHE_VARIABLE = "DUALANODIFF_CACHE"  # where the tiny preset keeps the base models it pre-trains
TRAIN, GENERATE, EVALUATE = "train", "generate", "evaluate_localization"


@dataclass(frozen=True)
class Job:
    name: str  # "washer/rust", or "washer: evaluation"
    object: str
    anomaly: str | None  # None for the object's evaluation
    calls: tuple[StageCall, ...]
    status_path: Path
    log_path: Path
    workdir: Path  # the working folder the jobs run in (the sweep's, also on a Ray worker)
    env: tuple[tuple[str, str], ...]
    after: tuple[str, ...] = ()  # the jobs that must have finished (done or not) first
    needs: tuple[str, ...] = ()  # those of them that must be done: if one is not, this job is not run
    fingerprint: str = ""  # a digest of its calls and those of the jobs it needs

    def call(self, stage: str) -> StageCall | None:
        return next((call for call in self.calls if call.stage == stage), None)

    def output(self, stage: str) -> Path | None:
        """The folder the job's call of `stage` writes."""
        call = self.call(stage)
        return Path(call.arguments["out"]) if call is not None else None

    @property
    def commands(self) -> list[str]:
        """The command lines that replay the job from its status file."""
        return [shlex.join(("dualanodiff", *call.command(self.status_path))) for call in self.calls]

    def status(self) -> dict[str, Any]:
        """The job's status file, or {} when there is none (or an unreadable one)."""
        try:
            status = read_json(self.status_path)
        except (OSError, ValueError):
            return {}
        return status if isinstance(status, dict) else {}

    def outputs_exist(self) -> bool:
        return all(stage_finished(call) for call in self.calls)

    def is_complete(self) -> bool:
        status = self.status()
        return status.get("status") == "done" and status.get("fingerprint") == self.fingerprint \
            and self.outputs_exist()


def stage_finished(call: StageCall) -> bool:
    """Whether the output folder of `call` holds a finished result (a complete run, a finalized GEN, metrics)."""
    out = Path(call.arguments["out"])
    try:
        if call.stage == TRAIN:
            return Run.open(out).is_complete()
        if call.stage == GENERATE:
            return "summary" in GeneratedSet.open(out).meta
    except (UserError, OSError):
        return False
    return (out / METRICS_FILE).is_file()


def selected_types(settings: SweepSettings) -> dict[str, list[str]]:
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


def _absolute(path: str | Path | None) -> str | None:
    return None if path is None else str(Path(path).resolve())


def _type_calls(settings: SweepSettings, name: str, anomaly: str, run: Path, gen: Path) -> tuple[StageCall, ...]:
    """The train call (resolved settings: every preset default written out) and the generate call of one type."""
    train = replace(settings.train, data_root=str(settings.data), layout=_absolute(settings.layout), object=name,
                    anomaly=anomaly).resolved()
    anomalib = settings.generate.export_anomalib  # one anomalib root per object: its good/ is the object's own
    generate = replace(settings.generate, num=settings.num, backgrounds=_absolute(settings.generate.backgrounds),
                       export_mvtec=_absolute(settings.generate.export_mvtec),
                       export_anomalib=_absolute(Path(anomalib) / name) if anomalib else None).validate()
    return (StageCall(TRAIN, {"settings": train.to_dict(), "out": str(run), "resume": True}),
            StageCall(GENERATE, {"run": str(run), "out": str(gen), "settings": generate.to_dict()}))


def _evaluation_call(settings: SweepSettings, name: str, out: Path, generated: list[str]) -> StageCall:
    return StageCall(EVALUATE, {"data": str(settings.data.resolve()), "layout": _absolute(settings.layout),
                                "generated": generated, "out": str(out), "object": name,
                                "device": settings.localization_device,
                                "settings": settings.localization.to_dict()})


def fingerprint(calls: tuple[StageCall, ...], needed: list[Job]) -> str:
    text = json.dumps([[call.to_dict() for call in calls], [job.fingerprint for job in needed]], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def plan_jobs(settings: SweepSettings) -> list[Job]:
    """One train + generate job per (object, anomaly type), then one evaluation job per object.

    With the tiny preset and no --base-model, each object's base is pre-trained once, into a cache every node can
    read: the object's first type's job makes it, and the other types run after that job (whether it succeeded or
    not: a type whose job failed after the base was cached holds nobody up, and if the base failed, each makes
    its own attempt)."""
    out = settings.out.resolve()
    env = ((CACHE_VARIABLE, os.environ.get(CACHE_VARIABLE, str(out / "cache"))),)
    common = {"workdir": Path.cwd(), "env": env}
    jobs: list[Job] = []
    for name, types in selected_types(settings).items():
        object_jobs: list[Job] = []
        for anomaly in types:
            calls = _type_calls(settings, name, anomaly, out / "runs" / name / anomaly,
                                out / "generated" / name / anomaly)
            after = (object_jobs[0].name,) if settings.shares_tiny_base and object_jobs else ()
            object_jobs.append(Job(f"{name}/{anomaly}", name, anomaly, calls,
                                   status_path=out / "jobs" / "generate" / name / f"{anomaly}.json",
                                   log_path=out / "logs" / "generate" / name / f"{anomaly}.log", after=after,
                                   fingerprint=fingerprint(calls, []), **common))
        generated = [str(job.output(GENERATE)) for job in object_jobs]
        calls = (_evaluation_call(settings, name, out / "eval" / name, generated),)
        names = tuple(job.name for job in object_jobs)
        jobs += [*object_jobs, Job(f"{name}: evaluation", name, None, calls,
                                   status_path=out / "jobs" / "evaluate" / f"{name}.json",
                                   log_path=out / "logs" / "evaluate" / f"{name}.log", after=names, needs=names,
                                   fingerprint=fingerprint(calls, object_jobs), **common)]
    return jobs
