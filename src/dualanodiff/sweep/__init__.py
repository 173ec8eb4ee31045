"""`dualanodiff sweep`: the benchmark, one model per (object, anomaly type), on this machine or on a Ray cluster.

The sweep is built on the Python API: `SweepSettings` holds a `TrainSettings`, a `GenerateSettings` and a
`LocalizationSettings` as templates, and every job is a list of stage calls (`dualanodiff.stages.StageCall`):

    "washer/rust"          train   -> SWEEP/runs/washer/rust         (resumed if it was interrupted)
                           generate -> SWEEP/generated/washer/rust
    "washer: evaluation"   evaluate_localization of every type's GEN -> SWEEP/eval/washer
                           (once every type of washer is done)

Each job's status file (SWEEP/jobs/generate/OBJ/TYPE.json, SWEEP/jobs/evaluate/OBJ.json) holds its calls before
it runs, so a job is replayed by hand from its file alone:

    dualanodiff train --config SWEEP/jobs/generate/washer/rust.json
    dualanodiff generate --config SWEEP/jobs/generate/washer/rust.json
    dualanodiff evaluate localization --config SWEEP/jobs/evaluate/washer.json

SWEEP also holds logs/ (each job's output), results.csv and results.md (the paper's columns per object, and the
generation figures per type) and report.html.

Backends: `local` runs the jobs one after another in this process; `ray` makes each job a Ray task that asks for its
GPUs and CPUs. A job with several GPUs runs train and generate under `accelerate launch --num_processes G
-m dualanodiff STAGE --config STATUS` (data-parallel training; generation shards the sample indices). On a cluster,
the data set, SWEEP and the working folder must be on a file system that every node sees under the same path, and
every node needs dualanodiff installed.

Resuming: a job counts as finished only when its status file says "done" (written last, after its outputs) for the
same fingerprint (its calls and those of the jobs it needs). A re-run skips finished jobs and continues the others;
a finished job whose calls changed (another --num, other settings) is refused, never redone. A job that raises is
retried `retries` times, then recorded as failed, and the others go on; errors in the input (the one-line `error:`
messages) fail at once, since a retry would meet them again.

Modules: settings (SweepSettings), plan (jobs, fingerprints), jobs (running one job), backends (local, Ray),
results (results.csv / results.md), run (run_sweep, progress).
"""

from dualanodiff.lazy import lazy_exports

_EXPORTS = {
    "SweepSettings": "dualanodiff.sweep.settings",
    "train_template": "dualanodiff.sweep.settings",
    "Job": "dualanodiff.sweep.plan",
    "plan_jobs": "dualanodiff.sweep.plan",
    "JobOutcome": "dualanodiff.sweep.jobs",
    "run_job": "dualanodiff.sweep.jobs",
    "result_rows": "dualanodiff.sweep.results",
    "write_results": "dualanodiff.sweep.results",
    "SweepOutcome": "dualanodiff.sweep.run",
    "run_sweep": "dualanodiff.sweep.run",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
