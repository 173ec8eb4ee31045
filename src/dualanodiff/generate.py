"""`dualanodiff generate`: make N (image, anomaly part, mask) triplets from a run, into a resumable GEN folder.

Samples already in GEN are skipped, so an interrupted job continues where it stopped; with several processes
(`accelerate launch`), process p of P makes the samples i with i % P == p, so the files are the same as one process
would write, and whichever process completes the set writes the summary (and the MVTec export).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from dualanodiff.data import read_split
from dualanodiff.generated import GeneratedSet
from dualanodiff.pipeline import DualAnoDiffPipeline


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Means of the per-sample figures (those present), and how many masks came out empty."""
    summary: dict[str, Any] = {"samples": len(records),
                               "empty_masks": sum(1 for r in records if not r.get("mask_area"))}
    for key in ("mask_area", "branch_agreement", "background_preservation"):
        values = [r[key] for r in records if r.get(key) is not None]
        if values:
            summary[f"mean_{key}"] = float(np.mean(values))
    return summary


def generate(run_dir: str | Path, out: str | Path, *, num: int, steps: int = 50, guidance: float = 2.5,
             batch_size: int = 8, seed: int = 0, mask_method: str = "threshold", scheduler: str = "ddim",
             background_every: int = 50, device: str | None = None, process_index: int = 0,
             num_processes: int = 1, export_mvtec: str | Path | None = None,
             backgrounds: str | Path | None = None, compile: bool = False) -> GeneratedSet:
    """Make samples 0..num-1 into `out` (those not there yet). `backgrounds`: a BCM run folder whose backgrounds
    the samples are measured against (background preservation), for runs without BCM of their own."""
    run_dir = Path(run_dir)
    pipe = DualAnoDiffPipeline.from_pretrained(run_dir, device=device, scheduler=scheduler, backgrounds=backgrounds,
                                               compile=compile)
    config = pipe.config
    settings = {"num": num, "steps": steps, "guidance": guidance, "seed": seed, "mask_method": mask_method,
                "scheduler": scheduler, "background_every": background_every if pipe.backgrounds is not None else None}
    generated = GeneratedSet.create(out, method="dualanodiff", object=config.object, anomaly=config.anomaly,
                                    settings=settings, run=str(run_dir.resolve()), data_root=config.data_root,
                                    split=read_split(run_dir / "split.json"))
    done = generated.completed_indices()
    # Fixed batches 0..B-1, B..2B-1, ... dealt out to the processes: a batch is always made whole, so its
    # samples come out bit for bit the same whatever the process count or restart (a CPU's float sums can
    # change with a batch's size); only its missing samples are written.
    batches = [range(start, min(start + batch_size, num)) for start in range(0, num, batch_size)]
    todo = [batch for number, batch in enumerate(batches)
            if number % num_processes == process_index and not done.issuperset(batch)]
    progress = tqdm(total=sum(len(set(batch) - done) for batch in todo),
                    desc=f"generating {config.object}/{config.anomaly}", unit="pair")
    for batch in todo:
        output = pipe(batch, seed=seed, steps=steps, guidance=guidance, segmenter=mask_method,
                      background_every=background_every, progress=False)
        for image, part, mask, record in zip(output.images, output.anomaly_parts, output.masks, output.records,
                                             strict=True):
            index = record.pop("index")
            if index not in done:
                generated.write_sample(index, image, part, mask, record)
                progress.update(1)
    progress.close()
    # With several processes, the one that finds every sample written (the last to finish) writes the summary.
    if generated.completed_indices() >= set(range(num)):
        records = [sample.record for sample in generated.samples()]
        generated.finalize(summarise(records))
        if export_mvtec is not None:
            generated.export_mvtec(export_mvtec)
    return generated
