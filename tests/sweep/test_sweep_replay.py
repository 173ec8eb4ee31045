"""A sweep job's status file alone reproduces the job: `dualanodiff train --config STATUS`, then `dualanodiff
generate --config STATUS`, from another folder, make what the sweep made."""

import shutil

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from sweep_helpers import run_cli, tiny_sweep

from dualanodiff.generation import GeneratedSet
from dualanodiff.io import read_json
from dualanodiff.sweep import plan_jobs, run_job
from dualanodiff.training import Run


def test_a_jobs_status_file_alone_replays_it(synthetic_root, micro_base_dir, tmp_path, one_torch_thread,
                                             monkeypatch):
    settings = tiny_sweep(synthetic_root, tmp_path / "sweep", micro_base_dir, anomalies=("rust",))
    job = plan_jobs(settings)[0]
    assert run_job(job, gpus=0, cpus=None, retries=0, session="s").status == "done"
    status = read_json(job.status_path)
    assert status["status"] == "done" and status["commands"] == job.commands
    run, gen = (tmp_path / "sweep" / kind / "washer" / "rust" for kind in ("runs", "generated"))

    # The file, copied anywhere; the outputs moved away; nothing rewritten; replayed from a fresh folder.
    copy = shutil.copy(job.status_path, tmp_path / "rust.json")
    shutil.move(tmp_path / "sweep", tmp_path / "original")
    (tmp_path / "fresh").mkdir()
    monkeypatch.chdir(tmp_path / "fresh")
    assert run_cli("train", "--config", copy) == 0
    assert run_cli("generate", "--config", copy) == 0

    original = tmp_path / "original"
    old, new = (Run.open(folder).weights_path for folder in (original / "runs" / "washer" / "rust", run))
    with safe_open(old, "pt") as before, safe_open(new, "pt") as after:  # (its key order varies from save to save)
        assert before.metadata() == after.metadata()
    old_tensors, new_tensors = load_file(old), load_file(new)
    assert old_tensors.keys() == new_tensors.keys()
    assert all(torch.equal(tensor, new_tensors[name]) for name, tensor in old_tensors.items())
    before = GeneratedSet.open(original / "generated" / "washer" / "rust").samples()
    after = GeneratedSet.open(gen).samples()
    assert len(after) == len(before) == settings.num
    for old, new in zip(before, after, strict=True):
        for kind in ("image_path", "anomaly_part_path", "mask_path"):
            assert getattr(new, kind).read_bytes() == getattr(old, kind).read_bytes()
        assert new.record == old.record
    assert not list((tmp_path / "fresh").iterdir())  # every path of the calls is absolute
