"""A job with several GPUs runs generate under `accelerate launch`, reading its call from the status file."""

import json

import numpy as np

from dualanodiff.generation import GeneratedSet, GenerateSettings, generate
from dualanodiff.model.config import DualConfig
from dualanodiff.stages import StageCall
from dualanodiff.sweep import Job, run_job
from dualanodiff.training import TrainSettings, train


def test_generation_sharded_over_two_processes_writes_what_one_process_writes(synthetic_root, micro_base_dir,
                                                                               tmp_path):
    """On a CPU machine too: each launched process takes its share of the samples from RANK / WORLD_SIZE; the
    files equal one process's."""
    settings = TrainSettings(data_root=str(synthetic_root), object="washer", anomaly="rust",
                             base_model=str(micro_base_dir), steps=1, batch_size=2, resolution=32, seed=7,
                             model=DualConfig(rank=4))
    run = train(settings, tmp_path / "run")
    generation = GenerateSettings(num=3, steps=1, batch_size=2)
    generate(run, tmp_path / "one", generation)
    call = StageCall("generate", {"run": str(run.root), "out": str(tmp_path / "two"),
                                  "settings": generation.to_dict()})
    job = Job("washer/rust", "washer", "rust", (call,), status_path=tmp_path / "status.json",
              log_path=tmp_path / "job.log", workdir=tmp_path, env=())
    outcome = run_job(job, gpus=2, cpus=1, retries=0, session="s")
    log = (tmp_path / "job.log").read_text()
    assert outcome.status == "done", log[-2000:]
    assert "accelerate.commands.launch --multi_gpu --num_processes 2" in log
    assert f"-m dualanodiff generate --config {tmp_path / 'status.json'}" in log
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
