"""Planning a sweep from its settings objects: the jobs and their calls, the order of an object's types, what a
failed job holds up, fingerprints, and tables that a sweep which ran nothing leaves alone."""

import csv
from dataclasses import replace

import pytest
from sweep_helpers import csv_rows, tiny_sweep

from dualanodiff.errors import UserError
from dualanodiff.generation.settings import GenerateSettings
from dualanodiff.io import read_json
from dualanodiff.stages import read_call
from dualanodiff.sweep import JobOutcome, SweepSettings, plan_jobs, train_template, write_results
from dualanodiff.sweep.run import Progress, drive


def test_planning_follows_the_data_set_and_refuses_what_it_lacks(synthetic_root, tmp_path):
    jobs = plan_jobs(SweepSettings(data=synthetic_root, out=tmp_path, objects=("washer",), num=7))
    assert [job.name for job in jobs] == ["washer/crack", "washer/rust", "washer: evaluation"]
    # The tiny preset pre-trains the object's base once: the first type's job makes it, the others come after it
    # (but do not need it to succeed); the evaluation needs every type.
    assert (jobs[1].after, jobs[1].needs) == (("washer/crack",), ())
    assert jobs[2].after == jobs[2].needs == ("washer/crack", "washer/rust")
    train, generate = jobs[1].calls
    assert (train.stage, generate.stage) == ("train", "generate")
    assert train.arguments["settings"]["object"] == "washer" and train.arguments["settings"]["anomaly"] == "rust"
    assert train.arguments["settings"]["steps"] == 800  # the preset's default, written out in the call
    assert train.arguments["out"] == generate.arguments["run"] == str(tmp_path.resolve() / "runs/washer/rust")
    assert generate.arguments["settings"]["num"] == 7
    assert jobs[2].calls[0].arguments["generated"] == [str(tmp_path.resolve() / f"generated/washer/{anomaly}")
                                                       for anomaly in ("crack", "rust")]
    assert jobs[1].commands == [f"dualanodiff train --config {jobs[1].status_path}",
                                f"dualanodiff generate --config {jobs[1].status_path}"]

    with_base = plan_jobs(SweepSettings(data=synthetic_root, out=tmp_path, anomalies=("rust",),
                                        train=train_template(base_model="b")))
    # fabric has no rust; with a base model given, an object's types need not wait for each other.
    assert [(job.name, job.after) for job in with_base] == [("washer/rust", ()),
                                                            ("washer: evaluation", ("washer/rust",))]
    with pytest.raises(UserError, match="dent"):
        plan_jobs(SweepSettings(data=synthetic_root, out=tmp_path, anomalies=("dent",)))
    with pytest.raises(UserError, match="unknown object 'bolt'"):
        plan_jobs(SweepSettings(data=synthetic_root, out=tmp_path, objects=("bolt",)))
    with pytest.raises(UserError, match="--num must be at least 1"):
        SweepSettings(data=synthetic_root, out=tmp_path, num=0)


def test_a_fingerprint_follows_the_calls_of_the_job_and_of_the_jobs_it_needs(synthetic_root, tmp_path):
    settings = tiny_sweep(synthetic_root, tmp_path, "base")
    first = plan_jobs(settings)
    assert [job.fingerprint for job in plan_jobs(settings)] == [job.fingerprint for job in first]
    more = plan_jobs(replace(settings, num=3))
    assert all(a.fingerprint != b.fingerprint for a, b in zip(first, more, strict=True))
    assert [call.to_dict() for call in more[2].calls] == [call.to_dict() for call in first[2].calls]
    other_eval = plan_jobs(replace(settings, localization=replace(settings.localization, epochs=2)))
    assert [job.fingerprint == old.fingerprint for job, old in zip(other_eval, first, strict=True)] == \
        [True, True, False]


class _ScriptedBackend:
    """Runs nothing: each submitted job finishes at once with the status the script gives it."""

    def __init__(self, script):
        self.script, self.queue, self.submitted = script, [], []

    def submit(self, job):
        self.queue.append(job)
        self.submitted.append(job.name)

    def in_flight(self):
        return len(self.queue)

    def running(self):
        return len(self.queue)

    def wait(self):
        job = self.queue.pop(0)
        return [JobOutcome(job.name, self.script.get(job.name, "done"), 1)]


def test_a_failed_first_type_holds_up_only_what_needs_it(synthetic_root, tmp_path, capsys):
    jobs = plan_jobs(SweepSettings(data=synthetic_root, out=tmp_path, objects=("washer",)))
    backend = _ScriptedBackend({"washer/crack": "failed"})
    progress = Progress(len(jobs), 0)
    outcomes = drive(jobs, backend, {}, progress)
    progress.close()
    # rust ran after crack although crack failed (it makes or reuses the cached base itself); the evaluation not.
    assert backend.submitted == ["washer/crack", "washer/rust"]
    assert {name: outcome.status for name, outcome in outcomes.items()} == {
        "washer/crack": "failed", "washer/rust": "done", "washer: evaluation": "blocked"}
    status = read_json(jobs[2].status_path)
    assert status["status"] == "blocked" and "needs washer/crack" in status["error"]
    # Even a job that never ran holds its calls, to be replayed by hand.
    assert read_call(jobs[2].status_path, "evaluate_localization").arguments["object"] == "washer"
    assert "not run: washer: evaluation" in capsys.readouterr().out


def test_a_sweep_that_ran_nothing_keeps_tables_holding_more_finished_rows(synthetic_root, tmp_path):
    out = tmp_path / "sweep"
    jobs = plan_jobs(tiny_sweep(synthetic_root, out, "base"))
    out.mkdir()
    finished = [{"object": name, "anomaly": anomaly, "status": "done"}
                for name in ("fabric", "washer") for anomaly in ("(all)", "a", "b")]
    with (out / "results.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, ["object", "anomaly", "status"])
        writer.writeheader()
        writer.writerows(finished)
    before = (out / "results.csv").read_text()
    kept = write_results(out, jobs, ran_jobs=False)
    assert kept.kept and (out / "results.csv").read_text() == before and not (out / "results.md").exists()
    written = write_results(out, jobs, ran_jobs=True)  # jobs that really ran: their table, whatever it holds
    assert not written.kept and csv_rows(written.csv)[("washer", "rust")]["status"] == "not run"
    assert "| washer | rust | not run | – |" in written.md.read_text()


def test_each_object_exports_into_its_own_anomalib_root(synthetic_root, tmp_path):
    jobs = plan_jobs(SweepSettings(data=synthetic_root, out=tmp_path, num=2,
                                   generate=GenerateSettings(num=1, export_anomalib=str(tmp_path / "export"))))
    roots = {job.object: job.calls[1].arguments["settings"]["export_anomalib"] for job in jobs if job.anomaly}
    assert roots == {name: str(tmp_path.resolve() / "export" / name) for name in ("fabric", "washer")}
