"""Where the jobs run: `submit` a job whose predecessors have finished, `wait` for some to finish.

`LocalBackend` runs them one after another in this process; `RayBackend` makes each a Ray task that asks for its
GPUs and CPUs, so a cluster runs as many at once as it has room for (Ray is imported only then).
"""

from __future__ import annotations

import sys
from typing import Any

from dualanodiff.errors import UserError
from dualanodiff.sweep.jobs import JobOutcome, one_line, record_failure, run_job
from dualanodiff.sweep.plan import Job

REFRESH_SECONDS = 2.0  # how often the Ray backend looks at its running jobs


class LocalBackend:
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


def _connect(ray: Any, address: str | None) -> bool:
    """Use this process's Ray connection, or join `address`, or start a local instance; whether it started one."""
    if ray.is_initialized():
        return False
    if address is None:  # a local cluster of this machine's CPUs and GPUs
        ray.init(include_dashboard=False, logging_level="warning")
        return True
    try:
        ray.init(address=address, logging_level="warning")
    except (ConnectionError, ValueError, RuntimeError) as error:
        raise UserError(f"--address {address}: cannot join the Ray cluster ({one_line(error)})") from None
    return True


class RayBackend:
    """Each job a Ray task asking for its GPUs and CPUs; Ray re-runs a task whose worker or node died."""

    def __init__(self, gpus: int | None, cpus: int | None, retries: int, session: str, address: str | None):
        try:
            import ray
        except ImportError:
            raise UserError("--backend ray needs Ray: pip install 'dualanodiff[ray]'") from None
        self.ray = ray
        self.started_here = _connect(ray, address)
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
        ready, _ = self.ray.wait(list(self.refs), num_returns=1, timeout=REFRESH_SECONDS)
        if ready:  # and whatever else is finished by now
            ready, _ = self.ray.wait(list(self.refs), num_returns=len(self.refs), timeout=0)
        outcomes = []
        for ref in ready:
            job = self.refs.pop(ref)
            try:
                outcomes.append(self.ray.get(ref))
            except self.ray.exceptions.RayError as error:  # the task's worker or node died, or it was cancelled
                outcomes.append(record_failure(job, one_line(error), self.retries + 1))
        return outcomes

    def close(self, interrupted: bool) -> None:
        if interrupted:
            for ref in self.refs:
                self.ray.cancel(ref)  # a KeyboardInterrupt inside the job: its finished work stays
        if self.started_here:
            self.ray.shutdown()
