"""The Ray backend: each job a Ray task on a local Ray instance, its output in its log."""

import os

from sweep_helpers import csv_rows, tiny_sweep

from dualanodiff.io import read_json
from dualanodiff.sweep import run_sweep


def test_the_ray_backend_runs_each_job_as_a_ray_task(synthetic_root, micro_base_dir, tmp_path, capsys):
    import ray

    settings = tiny_sweep(synthetic_root, tmp_path / "sweep", micro_base_dir, cpus_per_job=1)
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
