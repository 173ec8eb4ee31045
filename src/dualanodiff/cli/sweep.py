"""`dualanodiff sweep`: the benchmark over a data set's (object, anomaly type) pairs, locally or on a Ray cluster.

The sweep takes every option of `train`, `generate` and `evaluate localization` from those commands' own
definitions (the same names, defaults and help), and hands the ones given to each job in that command's own form.
Generate's options whose names train already uses become --generation-* (--generation-steps, ...), and the
evaluation's become --eval-* (--eval-epochs, ...).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection
from copy import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from dualanodiff.cli.app import app
from dualanodiff.cli.evaluate import localization
from dualanodiff.cli.model import generate_command, train_command

MAX_EXIT_STATUS = 100


@dataclass(frozen=True)
class _Forwarded:
    """Options of another command that the sweep declares as its own and hands on to that command."""

    path: tuple[str, ...]  # the command's words, e.g. ("evaluate", "localization")
    names: dict[str, str]  # the sweep's parameter name -> the command's
    parameters: tuple[inspect.Parameter, ...]

    def command_line(self, values: dict[str, Any]) -> tuple[str, ...]:
        """The options whose value is not the command's default, as that command's parser reads them."""
        command = typer.main.get_command(app)
        for word in self.path:
            command = command.commands[word]
        given = {self.names[name]: value for name, value in values.items() if name in self.names}
        args: list[str] = []
        for param in command.params:
            if param.param_type_name != "option" or param.name not in given:
                continue
            value = given[param.name]
            if value is None or value == param.default:
                continue
            if param.is_flag:
                args.append(param.opts[0] if value else param.secondary_opts[0])
            else:
                args += [param.opts[0], str(value)]
        return tuple(args)


def _forward(callback: Callable[..., Any], path: tuple[str, ...], *, skip: Collection[str], prefix: str,
             taken: Collection[str] = (), prefix_all: bool = False) -> _Forwarded:
    """The command's options but `skip`; those named like one in `taken` (or all) get `prefix`."""
    names, parameters = {}, []
    for parameter in inspect.signature(callback, eval_str=True).parameters.values():
        if parameter.name in skip:
            continue
        option = copy(parameter.default)  # a typer OptionInfo: its names, default, metavar and help
        name, label = parameter.name, " ".join(path)
        if prefix_all or name in taken:
            name = f"{prefix}_{name}"
            label += f" {option.param_decls[0]}"
            option.param_decls = tuple("/".join(f"--{prefix}-{flag.removeprefix('--')}" for flag in decl.split("/"))
                                       for decl in option.param_decls)
        option.help = f"[{label}] {option.help or ''}".rstrip()
        names[name] = parameter.name
        parameters.append(parameter.replace(name=name, default=option, kind=inspect.Parameter.KEYWORD_ONLY))
    return _Forwarded(path, names, tuple(parameters))


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip()) if value else ()


def sweep(
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
    **options: Any,
) -> None:
    """Run the benchmark: every (object, anomaly type) trained and generated, every object evaluated.

    \b
    One job per (object, anomaly type): SWEEP/runs/OBJ/TYPE (train), then SWEEP/generated/OBJ/TYPE
    (generate); once every type of an object is done, SWEEP/eval/OBJ (evaluate localization). At the
    end SWEEP/results.csv and results.md (pixel and image AUROC / AP / F1-max per object and their
    mean; mask area and the other generation figures per type) and SWEEP/report.html. Every option of
    train and generate passes through to the jobs (generate's --steps, --batch-size and --seed as
    --generation-*), and evaluate localization's as --eval-*.

    \b
    Run the same command again to resume: finished jobs are skipped, the others continue. A failing
    job is retried --retries times, then recorded as failed while the others go on. Exit status: 0,
    or the number of failed jobs (at most 100). Each job's output: SWEEP/logs/; its status and
    commands: SWEEP/jobs/.

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
    from tqdm import tqdm

    from dualanodiff.sweep import SweepSettings, run_sweep

    settings = SweepSettings(
        data=data, out=out, layout=layout, objects=_list(objects), anomalies=_list(anomalies), num=num,
        train_args=TRAIN.command_line(options), generate_args=GENERATE.command_line(options),
        evaluate_args=EVALUATE.command_line(options), gpus_per_job=gpus_per_job, cpus_per_job=cpus_per_job,
        retries=retries)
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


_OWN = [p for p in inspect.signature(sweep, eval_str=True).parameters.values() if p.kind is not p.VAR_KEYWORD]
TRAIN = _forward(train_command, ("train",), skip={"data", "object_", "anomaly", "out", "layout", "resume"},
                 prefix="train")
GENERATE = _forward(generate_command, ("generate",), skip={"run", "num", "out"}, prefix="generation",
                    taken={p.name for p in _OWN} | set(TRAIN.names))
EVALUATE = _forward(localization, ("evaluate", "localization"),
                    skip={"ctx", "data", "generated", "out", "layout", "object_"}, prefix="eval", prefix_all=True)
sweep.__signature__ = inspect.Signature([*_OWN, *TRAIN.parameters, *GENERATE.parameters, *EVALUATE.parameters])
app.command("sweep")(sweep)
