"""`dualanodiff sweep`: the benchmark over a data set's (object, anomaly type) pairs, locally or on a Ray cluster.

Besides its own options, the sweep takes every option of `train`, `generate` and `evaluate localization`, copied
from those commands' click options (the same names, defaults and help) by `SweepCommand`, which takes their values
out again before the sweep's callback runs; the callback builds the stages' settings with those commands' own
functions (`train_settings`, `generate_settings`, `localization_settings`) and calls `run_sweep`. Generate's options
whose names train already uses become --generation-* (--generation-steps, ...), and the evaluation's all become
--eval-* (--eval-epochs, ..., --eval-device).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand
from typer.main import get_command_from_info

from dualanodiff.cli.app import app, evaluate_app
from dualanodiff.cli.evaluate import localization, localization_settings
from dualanodiff.cli.model import generate_command, generate_settings, train_command, train_settings
from dualanodiff.errors import UserError

MAX_EXIT_STATUS = 100
TRAIN, GENERATE, EVALUATE = "train", "generate", "evaluate localization"
_META_KEY = "dualanodiff.sweep.forwarded"  # where SweepCommand leaves the forwarded values for the callback


@dataclass(frozen=True)
class _Source:
    """A command whose options the sweep declares as its own, but `skip` (the sweep sets those per job)."""

    label: str  # the command's words
    typer_app: typer.Typer
    callback: Callable[..., Any]
    skip: frozenset[str]
    prefix: str  # for an option whose name is taken, or for all of them with `prefix_all`
    prefix_all: bool = False


_SOURCES = (
    _Source(TRAIN, app, train_command, frozenset({"data", "object_", "anomaly", "out", "layout", "resume", "config"}),
            "train"),
    _Source(GENERATE, app, generate_command, frozenset({"run", "num", "out", "config"}), "generation"),
    _Source(EVALUATE, evaluate_app, localization,
            frozenset({"data", "generated", "out", "layout", "object_", "config"}), "eval", prefix_all=True),
)


@dataclass(frozen=True)
class Forwarded:
    option: Any  # the sweep's click Option, a renamed copy of the command's
    command: str  # TRAIN, GENERATE or EVALUATE
    name: str  # the command's parameter name
    flag: str  # the command's option name (--steps for the sweep's --generation-steps)


def _options_of(source: _Source) -> list[Any]:
    """The click options of the source's command, as Typer builds them (without building the whole app)."""
    info = next(info for info in source.typer_app.registered_commands if info.callback is source.callback)
    command = get_command_from_info(info, pretty_exceptions_short=app.pretty_exceptions_short,
                                    rich_markup_mode=app.rich_markup_mode)
    return [param for param in command.params if param.param_type_name == "option" and param.name not in source.skip]


def _copy(option: Any, source: _Source, prefixed: bool) -> Any:
    """The option as the sweep declares it: help marked with its command, names prefixed if `prefixed`."""
    option, label = copy.copy(option), source.label
    if prefixed:
        label += f" {option.opts[0]}"
        option.name = f"{source.prefix}_{option.name}"
        option.opts, option.secondary_opts = ([f"--{source.prefix}-{flag.removeprefix('--')}" for flag in flags]
                                              for flags in (option.opts, option.secondary_opts))
    option.help = f"[{label}] {option.help or ''}".rstrip()
    return option


@functools.cache
def forwarded_options(own: frozenset[str]) -> tuple[Forwarded, ...]:
    """Train's, generate's and evaluate localization's options for a command whose own parameters are `own`."""
    taken, forwarded = set(own), []
    for source in _SOURCES:
        options = _options_of(source)
        for option in options:
            forwarded.append(Forwarded(_copy(option, source, source.prefix_all or option.name in taken),
                                       source.label, option.name, option.opts[0]))
        taken |= {entry.option.name for entry in forwarded}
    return tuple(forwarded)


class SweepCommand(TyperCommand):
    """The sweep's own options followed by the forwarded ones; `invoke` takes the forwarded values out of the
    parameters (into `ctx.meta`, per command, under the command's parameter names) before the callback runs."""

    def __init__(self, *args: Any, params: list[Any] | None = None, **kwargs: Any):
        own = list(params or [])
        self.forwarded = forwarded_options(frozenset(param.name for param in own))
        super().__init__(*args, params=[*own, *(entry.option for entry in self.forwarded)], **kwargs)

    def invoke(self, ctx: Any) -> Any:
        values: dict[str, dict[str, Any]] = {TRAIN: {}, GENERATE: {}, EVALUATE: {}}
        for entry in self.forwarded:
            if entry.option.name in ctx.params:
                values[entry.command][entry.name] = ctx.params.pop(entry.option.name)
        ctx.meta[_META_KEY] = values
        return super().invoke(ctx)


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip()) if value else ()


def _built(build: Callable[[dict[str, Any]], Any], params: dict[str, Any], command: str, ctx: typer.Context) -> Any:
    """`build(params)`; a refusal that names one of the command's options names the sweep's instead."""
    try:
        return build(params)
    except UserError as error:
        message = str(error)
        for entry in ctx.command.forwarded:
            if entry.command == command and message.startswith(f"{entry.flag} ") and \
                    entry.option.opts[0] != entry.flag:
                raise UserError(entry.option.opts[0] + message[len(entry.flag):]) from None
        raise


def sweep_settings(ctx: typer.Context, **own: Any):  # -> SweepSettings (imported lazily)
    """The SweepSettings of the sweep's own parameters and the forwarded ones (in `ctx.meta`)."""
    from dualanodiff.sweep.settings import EVERY, SweepSettings

    values = ctx.meta[_META_KEY]
    evaluation = dict(values[EVALUATE])
    device = evaluation.pop("device", None)
    train = {**values[TRAIN], "data": own["data"], "object_": EVERY, "anomaly": EVERY}
    return SweepSettings(
        data=own["data"], out=own["out"], layout=own["layout"], objects=_list(own["objects"]),
        anomalies=_list(own["anomalies"]), num=own["num"], train=_built(train_settings, train, TRAIN, ctx),
        generate=_built(generate_settings, {**values[GENERATE], "num": own["num"]}, GENERATE, ctx),
        localization=_built(localization_settings, evaluation, EVALUATE, ctx), localization_device=device,
        gpus_per_job=own["gpus_per_job"], cpus_per_job=own["cpus_per_job"], retries=own["retries"])


SWEEP_HELP = """Run the benchmark: every (object, anomaly type) trained and generated, every object evaluated.

\b
One job per (object, anomaly type): SWEEP/runs/OBJ/TYPE (train), then SWEEP/generated/OBJ/TYPE
(generate); once every type of an object is done, SWEEP/eval/OBJ (evaluate localization). At the
end SWEEP/results.csv and results.md (pixel and image AUROC / AP / F1-max per object and their
mean; mask area and the other generation figures per type) and SWEEP/report.html. Every option of
train and generate passes through to the jobs (generate's --steps, --batch-size, --seed and
--compile as --generation-*), and evaluate localization's as --eval-*.

\b
Run the same command again to resume: finished jobs are skipped, the others continue; finished jobs
planned with other settings (say another --num) are refused, never redone. A failing job is retried
--retries times, then recorded as failed while the others go on. Exit status: 0, or the number of
failed jobs (at most 100). Each job's output: SWEEP/logs/; its status and stage calls: SWEEP/jobs/,
from which it is replayed by hand: dualanodiff train --config SWEEP/jobs/generate/OBJ/TYPE.json, then generate
--config with the same file.

\b
--backend ray: each job is a Ray task asking for --gpus-per-job GPUs and --cpus-per-job CPUs;
--address joins a running cluster, without it a local one is started. On a cluster, ROOT, SWEEP
and the current folder must be on a file system that every node sees under the same path, and
every node needs dualanodiff installed.

\b
Example: dualanodiff sweep --data mvtec_ad --out sweep --preset sd15 --backend ray --address auto \\
         --gpus-per-job 2
Example: dualanodiff sweep --data synthetic --out sweep --objects washer --steps 200 --num 16 \\
         --generation-steps 20 --eval-epochs 5
"""


@app.command("sweep", cls=SweepCommand, help=SWEEP_HELP)
def sweep(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", metavar="ROOT",
                              help="The data set's folder (MVTec AD layout or --layout)."),
    out: Path = typer.Option(..., "--out", metavar="SWEEP", help="The sweep's folder (resumable)."),
    layout: Path | None = typer.Option(None, "--layout", metavar="FILE", help="JSON layout of a custom data set."),
    objects: str | None = typer.Option(None, "--objects", metavar="A,B", help="Objects to run (default: all)."),
    anomalies: str | None = typer.Option(None, "--anomalies", metavar="X,Y",
                                         help="Anomaly types to run (default: every type of each object)."),
    num: int = typer.Option(1000, "--num", metavar="N", help="Triplets per anomaly type (the paper makes 1000)."),
    backend: str = typer.Option("local", "--backend", help="local (this process, one job after another) or ray."),
    address: str | None = typer.Option(None, "--address", metavar="ADDR",
                                       help="Ray: join this cluster (auto, ray://head:10001); none starts a "
                                            "local one."),
    gpus_per_job: int | None = typer.Option(None, "--gpus-per-job", metavar="G",
                                            help="GPUs per job; above 1, train and generate run under accelerate "
                                                 "launch (default: 1 on a Ray cluster with GPUs, else 0)."),
    cpus_per_job: int | None = typer.Option(None, "--cpus-per-job", metavar="C",
                                            help="CPUs per job, also its torch threads (Ray's default: 1)."),
    retries: int = typer.Option(1, "--retries", metavar="R", help="Retries of a failing job before it counts as "
                                                                  "failed."),
) -> None:
    from tqdm import tqdm

    from dualanodiff.sweep.run import run_sweep

    settings = sweep_settings(ctx, data=data, out=out, layout=layout, objects=objects, anomalies=anomalies, num=num,
                              gpus_per_job=gpus_per_job, cpus_per_job=cpus_per_job, retries=retries)
    outcome = run_sweep(settings, backend=backend, address=address)
    print(f"sweep finished in {tqdm.format_interval(outcome.seconds)}: {outcome.done} job(s) done now, "
          f"{outcome.skipped} done before, {len(outcome.failed)} failed, {len(outcome.blocked)} not run")
    for name, error in outcome.failed.items():
        print(f"failed: {name}: {error}")
    for name, reason in outcome.blocked.items():
        print(f"not run: {name}: {reason}")
    print(f"results: {outcome.results_md} and {outcome.results_csv}")
    if outcome.report is not None:
        print(f"report: {outcome.report}")
    if outcome.failed:
        raise typer.Exit(min(len(outcome.failed), MAX_EXIT_STATUS))
