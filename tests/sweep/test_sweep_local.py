"""A local sweep through the CLI: failures recorded while the others go on, resuming after an interruption,
retries, and a re-run with another --num that is refused rather than redoing finished work."""

import pytest
from sweep_helpers import TINY_EVALUATION_ARGS, csv_rows, run_cli, tiny_train_args

from dualanodiff.io import read_json


def _mtimes(*folders):
    return {path: path.stat().st_mtime_ns for folder in folders for path in folder.rglob("*")}


def _check_the_tables(out):
    """results.csv, results.md and report.html of a finished sweep show the evaluation's figures; the evaluation
    replays from its status file to the same figures."""
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
    assert run_cli("evaluate", "localization", "--config", out / "jobs" / "evaluate" / "washer.json") == 0
    assert read_json(out / "eval" / "washer" / "metrics.json")["pixel_auroc"] == metrics["pixel_auroc"]


def test_a_local_sweep_goes_on_past_failures_resumes_and_refuses_to_redo_finished_jobs(
        synthetic_root, micro_base_dir, tmp_path, training_calls, one_torch_thread, capsys):
    calls, failures = training_calls
    out = tmp_path / "sweep"
    command = ["sweep", "--data", synthetic_root, "--out", out, "--objects", "washer",
               *tiny_train_args(micro_base_dir), "--generation-steps", "1", "--qc", "off", "--retries", "1",
               *TINY_EVALUATION_ARGS, "--num", "2"]
    crack_status = out / "jobs" / "generate" / "washer" / "crack.json"

    # 1: crack fails on both attempts; rust finishes all the same; the evaluation needs crack, so it is not run.
    failures["crack"] = [RuntimeError("CUDA out of memory"), RuntimeError("CUDA out of memory")]
    assert run_cli(*command) == 1  # one failed job
    printed = capsys.readouterr().out
    assert "FAILED washer/crack after 2 attempt(s): RuntimeError: CUDA out of memory" in printed
    assert "done washer/rust" in printed and "not run: washer: evaluation" in printed
    assert calls == {"crack": 2, "rust": 1}
    status = read_json(crack_status)
    assert status["status"] == "failed" and status["error"] == "RuntimeError: CUDA out of memory"
    assert "Traceback" in (out / "logs" / "generate" / "washer" / "crack.log").read_text()
    rows = csv_rows(out / "results.csv")
    assert rows[("washer", "rust")]["status"] == "done" and rows[("washer", "rust")]["samples"] == "2"
    assert rows[("washer", "crack")]["error"] == "RuntimeError: CUDA out of memory"
    assert rows[("washer", "(all)")]["status"] == "blocked" and rows[("washer", "(all)")]["pixel_auroc"] == ""
    assert "CUDA out of memory" in (out / "results.md").read_text()
    rust = (out / "runs" / "washer" / "rust", out / "generated" / "washer" / "rust")
    finished = _mtimes(*rust)

    # 2: stopped (Ctrl-C) in crack's training: nothing finished is redone, crack is not taken for finished; its
    # status file held its calls before anything ran.
    calls.clear()
    failures["crack"] = [KeyboardInterrupt()]
    assert run_cli(*command) == 130
    assert calls == {"crack": 1}
    status = read_json(crack_status)
    assert status["status"] == "running" and [call["stage"] for call in status["calls"]] == ["train", "generate"]

    # 3: the re-run finishes crack (its first attempt meets a passing fault and is retried), then evaluates.
    calls.clear()
    failures["crack"] = [RuntimeError("connection to node lost")]
    assert run_cli(*command) == 0
    printed = capsys.readouterr().out
    assert "done washer/crack" in printed and "(attempt 2)" in printed and "done washer: evaluation" in printed
    assert calls == {"crack": 2}  # rust was not trained again ...
    assert _mtimes(*rust) == finished  # ... nor rewritten
    assert read_json(crack_status)["attempts"] == 2
    _check_the_tables(out)

    # 4: the same command again runs nothing; with another --num the finished jobs are refused, never redone:
    # every output and table stays as it was.
    assert run_cli(*command) == 0
    assert "0 job(s) done now, 3 done before" in capsys.readouterr().out
    everything = _mtimes(out)
    calls.clear()
    assert run_cli(*command[:-1], "3") == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].startswith("error: ") and "were made with other settings than these" in error[-1]
    assert "another --out" in error[-1] and not calls
    assert _mtimes(out) == everything
