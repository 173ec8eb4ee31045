"""The sweep: options handed on to the jobs, the local and Ray backends, resuming after an interruption, retries and
failures, and generation sharded over processes."""

import csv
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import typer

from dualanodiff.cli import main
from dualanodiff.cli.app import app
from dualanodiff.cli.sweep import EVALUATE, GENERATE, TRAIN
from dualanodiff.errors import UserError
from dualanodiff.generate import generate
from dualanodiff.generated import GeneratedSet
from dualanodiff.io import read_json
from dualanodiff.sweep import Job, Step, SweepSettings, plan_jobs, run_job, run_sweep
from dualanodiff.train import train
from test_train import micro_config

TINY_EVALUATION = ("--epochs", "1", "--resolution", "32", "--base-width", "2")


def run_cli(*args) -> int:
    with pytest.raises(SystemExit) as exit_:
        main([str(arg) for arg in args])
    return exit_.value.code


def tiny_train_args(base_dir: Path) -> tuple[str, ...]:
    return ("--base-model", str(base_dir), "--resolution", "32", "--steps", "1", "--batch-size", "2", "--rank", "4")


def csv_rows(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    return {(row["object"], row["anomaly"]): row for row in csv.DictReader(path.open())}


def test_the_sweep_takes_the_options_of_train_generate_and_evaluate_and_hands_them_on():
    commands = typer.main.get_command(app).commands
    params = commands["sweep"].make_context("sweep", [
        "--data", "d", "--out", "o", "--steps", "7", "--resolution", "48", "--lr", "5e-06", "--no-flip-vertical",
        "--bcm", "--no-saim", "--preset", "tiny", "--generation-steps", "3", "--guidance", "2.0",
        "--generation-seed", "5", "--device", "cpu", "--eval-epochs", "2", "--eval-resolution", "64"]).params
    train_args = TRAIN.command_line(params)
    assert "--preset" not in train_args  # a default is left to the command itself
    trained = commands["train"].make_context("train", ["--data", "d", "--object", "o", "--anomaly", "a", "--out",
                                                       "r", *train_args]).params
    assert (trained["steps"], trained["resolution"], trained["lr"]) == (7, 48, 5e-6)
    assert trained["flip_vertical"] is False and trained["flip_horizontal"] is None
    assert trained["bcm"] is True and trained["saim"] is False
    generated = commands["generate"].make_context("generate", ["r", "--num", "1", "--out", "g",
                                                               *GENERATE.command_line(params)]).params
    assert (generated["steps"], generated["guidance"], generated["seed"], generated["device"]) == (3, 2.0, 5, "cpu")
    assert generated["batch_size"] == 8  # generate's own default, not train's --batch-size
    evaluated = commands["evaluate"].commands["localization"].make_context(
        "localization", ["--data", "d", "--generated", "g", "--out", "e", *EVALUATE.command_line(params)]).params
    assert (evaluated["epochs"], evaluated["resolution"], evaluated["seeds"]) == (2, 64, 1)


def test_planning_follows_the_data_set_and_refuses_what_it_lacks(synthetic_root, tmp_path):
    jobs = plan_jobs(SweepSettings(data=synthetic_root, out=tmp_path, objects=("washer",)))
    assert [job.name for job in jobs] == ["washer/crack", "washer/rust", "washer: evaluation"]
    # The tiny preset pre-trains the object's base once: the first type's job does it, the others wait for it.
    assert jobs[1].after == ("washer/crack",)
    assert jobs[2].after == ("washer/crack", "washer/rust")
    assert jobs[2].steps[0].args.count("--generated") == 2
    with_base = plan_jobs(SweepSettings(data=synthetic_root, out=tmp_path, anomalies=("rust",),
                                        train_args=("--base-model", "b")))
    # fabric has no rust; with a base model given, an object's jobs need not wait for each other.
    assert [(job.name, job.after) for job in with_base] == [("washer/rust", ()),
                                                            ("washer: evaluation", ("washer/rust",))]
    with pytest.raises(UserError, match="dent"):
        plan_jobs(SweepSettings(data=synthetic_root, out=tmp_path, anomalies=("dent",)))
    with pytest.raises(UserError, match="unknown object 'bolt'"):
        plan_jobs(SweepSettings(data=synthetic_root, out=tmp_path, objects=("bolt",)))
    with pytest.raises(UserError, match="--num must be at least 1"):
        SweepSettings(data=synthetic_root, out=tmp_path, num=0)


@pytest.fixture
def training_calls(monkeypatch):
    """Counts `train` calls per anomaly type; `failures[type]` lists exceptions to raise, one per call, first."""
    import dualanodiff.train

    real_train = dualanodiff.train.train
    calls: Counter = Counter()
    failures: dict[str, list[BaseException]] = {}

    def counted_train(config, run_dir, *, resume=False):
        calls[config.anomaly] += 1
        if failures.get(config.anomaly):
            raise failures[config.anomaly].pop(0)
        return real_train(config, run_dir, resume=resume)

    monkeypatch.setattr(dualanodiff.train, "train", counted_train)
    return calls, failures


def test_a_local_sweep_goes_on_past_failures_and_resumes_after_an_interruption(
        synthetic_root, micro_base_dir, tmp_path, training_calls, capsys):
    calls, failures = training_calls
    out = tmp_path / "sweep"
    command = ["sweep", "--data", synthetic_root, "--out", out, "--objects", "washer", "--num", "2",
               *tiny_train_args(micro_base_dir), "--generation-steps", "1", "--retries", "1",
               *(f"--eval-{arg[2:]}" if arg.startswith("--") else arg for arg in TINY_EVALUATION)]

    # 1: crack fails on both attempts; rust finishes all the same; the evaluation needs crack, so it waits.
    failures["crack"] = [RuntimeError("CUDA out of memory"), RuntimeError("CUDA out of memory")]
    assert run_cli(*command) == 1  # one failed job
    printed = capsys.readouterr().out
    assert "FAILED washer/crack after 2 attempt(s): RuntimeError: CUDA out of memory" in printed
    assert "done washer/rust" in printed and "not run: washer: evaluation" in printed
    assert calls == {"crack": 2, "rust": 1}
    status = read_json(out / "jobs" / "generate" / "washer" / "crack.json")
    assert status["status"] == "failed" and status["error"] == "RuntimeError: CUDA out of memory"
    assert "Traceback" in (out / "logs" / "generate" / "washer" / "crack.log").read_text()
    rows = csv_rows(out / "results.csv")
    assert rows[("washer", "rust")]["status"] == "done" and rows[("washer", "rust")]["samples"] == "2"
    assert rows[("washer", "crack")]["error"] == "RuntimeError: CUDA out of memory"
    assert rows[("washer", "(all)")]["status"] == "blocked" and rows[("washer", "(all)")]["pixel_auroc"] == ""
    assert "CUDA out of memory" in (out / "results.md").read_text()
    finished = {path: path.stat().st_mtime_ns for path in (out / "runs" / "washer" / "rust").rglob("*")}
    finished |= {path: path.stat().st_mtime_ns for path in (out / "generated" / "washer" / "rust").rglob("*")}

    # 2: stopped (Ctrl-C) in crack's training: nothing finished is redone, crack is not taken for finished.
    calls.clear()
    failures["crack"] = [KeyboardInterrupt()]
    assert run_cli(*command) == 130
    assert calls == {"crack": 1}
    assert read_json(out / "jobs" / "generate" / "washer" / "crack.json")["status"] == "running"

    # 3: the re-run finishes crack (its first attempt meets a passing fault and is retried), then evaluates.
    calls.clear()
    failures["crack"] = [RuntimeError("connection to node lost")]
    assert run_cli(*command) == 0
    printed = capsys.readouterr().out
    assert "done washer/crack" in printed and "(attempt 2)" in printed and "done washer: evaluation" in printed
    assert calls == {"crack": 2}  # rust was not trained again ...
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in finished.items())  # ... nor rewritten
    assert read_json(out / "jobs" / "generate" / "washer" / "crack.json")["attempts"] == 2
    metrics = read_json(out / "eval" / "washer" / "metrics.json")
    assert set(metrics["per_type"]) == {"crack", "rust"}
    rows = csv_rows(out / "results.csv")
    assert float(rows[("mean", "(all)")]["pixel_auroc"]) == pytest.approx(metrics["pixel_auroc"], abs=1e-4)
    assert float(rows[("washer", "crack")]["image_ap"]) == pytest.approx(metrics["per_type"]["crack"]["image_ap"],
                                                                         abs=1e-4)
    assert rows[("washer", "(all)")]["samples"] == "4"
    table = (out / "results.md").read_text()
    assert "| pixel AUROC | pixel AP | pixel F1-max | image AUROC | image AP | image F1-max |" in table
    assert f"| **{100 * metrics['pixel_auroc']:.1f}** |" in table
    report = (out / "report.html").read_text()
    assert "Results: sweep" in report and "generated/washer/crack" in report


def test_the_ray_backend_runs_each_job_as_a_ray_task(synthetic_root, micro_base_dir, tmp_path, capsys):
    import ray

    settings = SweepSettings(data=synthetic_root, out=tmp_path / "sweep", objects=("washer",), num=2,
                             train_args=tiny_train_args(micro_base_dir), generate_args=("--steps", "1"),
                             evaluate_args=TINY_EVALUATION, cpus_per_job=1)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    try:
        outcome = run_sweep(settings, backend="ray")
    finally:
        ray.shutdown()
    assert (outcome.done, outcome.skipped, outcome.failed, outcome.blocked) == (3, 0, {}, {})
    statuses = [read_json(path) for path in (tmp_path / "sweep" / "jobs").rglob("*.json")]
    assert len(statuses) == 3 and all(s["status"] == "done" for s in statuses)
    assert all(s["pid"] != os.getpid() for s in statuses)  # run by Ray's workers, not by this process
    log = (tmp_path / "sweep" / "logs" / "generate" / "washer" / "rust.log").read_text()
    assert "training on 4 of 12 'rust' images" in log  # the job's own output went to its log
    assert "training on" not in capsys.readouterr().out
    rows = csv_rows(outcome.results_csv)
    assert rows[("washer", "(all)")]["status"] == "done" and rows[("mean", "(all)")]["pixel_auroc"]
    assert outcome.report is not None and outcome.report.is_file()


def test_generation_sharded_over_two_processes_writes_what_one_process_writes(synthetic_root, micro_base_dir,
                                                                               tmp_path):
    """A job with 2 GPUs runs generate under `accelerate launch --num_processes 2` (on a CPU machine too: each
    process takes its share of the samples from RANK / WORLD_SIZE); the files equal one process's."""
    run = train(micro_config(synthetic_root, micro_base_dir, steps=1), tmp_path / "run")
    generate(run, tmp_path / "one", num=3, steps=1, batch_size=2)
    step = Step(("generate", str(run), "--num", "3", "--steps", "1", "--batch-size", "2", "--out",
                 str(tmp_path / "two")), distributed=True)
    job = Job("washer/rust", "washer", "rust", (step,), outputs=(), status_path=tmp_path / "status.json",
              log_path=tmp_path / "job.log", workdir=tmp_path, env=())
    outcome = run_job(job, gpus=2, cpus=1, retries=0, session="s")
    log = (tmp_path / "job.log").read_text()
    assert outcome.status == "done", log[-2000:]
    assert "accelerate.commands.launch --multi_gpu --num_processes 2" in log
    assert log.count("generated: ") == 2  # both processes ran
    for kind in ("image", "fg", "mask", "samples"):
        names = sorted(path.name for path in (tmp_path / "one" / kind).iterdir())
        assert len(names) == 3 and names == sorted(path.name for path in (tmp_path / "two" / kind).iterdir())
    # The launcher gives each process one CPU thread, this test process has two: float sums may round
    # differently, so pixels may differ by one level (same threads and batches give identical files).
    for single, sharded in zip(GeneratedSet.open(tmp_path / "one").samples(),
                               GeneratedSet.open(tmp_path / "two").samples(), strict=True):
        (image_a, part_a, mask_a), (image_b, part_b, mask_b) = single.load(), sharded.load()
        assert np.abs(image_a.astype(int) - image_b.astype(int)).max() <= 1
        assert np.abs(part_a.astype(int) - part_b.astype(int)).max() <= 1
        assert (mask_a != mask_b).mean() <= 0.01
        assert single.record.keys() == sharded.record.keys() and single.record["seed"] == sharded.record["seed"]
    one, two = (json.loads((tmp_path / name / "meta.json").read_text()) for name in ("one", "two"))
    assert one["summary"]["samples"] == two["summary"]["samples"] == two["num"] == 3
