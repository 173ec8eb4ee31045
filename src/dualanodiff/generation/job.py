"""The generate job (`dualanodiff generate`): N (image, anomaly part, mask) triplets from a run, into a resumable
GEN folder.

Samples already in GEN are skipped, so an interrupted job continues where it stopped; with several processes
(`accelerate launch`), process p of P makes the samples i with i % P == p, so the files are the same as one process
would write, and whichever process completes the set writes the summary (and the MVTec export).
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from dualanodiff.data import load_source
from dualanodiff.devices import process_device
from dualanodiff.generation.generated_set import GeneratedSet
from dualanodiff.generation.pipeline import DualAnoDiffPipeline
from dualanodiff.generation.settings import GenerateSettings
from dualanodiff.io import folder_lock
from dualanodiff.masks.anomaly import load_segmenter
from dualanodiff.progress import progress
from dualanodiff.training.run import Run


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Means of the per-sample figures (those present), and how many masks came out empty."""
    summary: dict[str, Any] = {"samples": len(records),
                               "empty_masks": sum(1 for r in records if not r.get("mask_area"))}
    for key in ("mask_area", "branch_agreement", "background_preservation"):
        values = [r[key] for r in records if r.get(key) is not None]
        if values:
            summary[f"mean_{key}"] = float(np.mean(values))
    return summary


def generate(run: Run | str | Path, out: str | Path, settings: GenerateSettings, *, process_index: int = 0,
             num_processes: int = 1) -> GeneratedSet:
    """Make samples 0..num-1 of `settings` into `out` (those not there yet); with several processes, this
    process's share of them."""
    settings.validate()
    # One writer per GEN folder (with several processes, the first holds it for all of them).
    holder = folder_lock(out, tidy=num_processes == 1) if process_index == 0 else nullcontext()
    with holder:
        return _generate(run, out, settings, process_index, num_processes)


def _generate(run: Run | str | Path, out: str | Path, settings: GenerateSettings, process_index: int,
              num_processes: int) -> GeneratedSet:
    segmenter = load_segmenter(settings.mask_method)  # a bad mask method fails before the model loads
    pipe = DualAnoDiffPipeline.from_pretrained(run, device=process_device(settings.device),
                                               scheduler=settings.scheduler, backgrounds=settings.backgrounds,
                                               compile=settings.compile)
    run, num = pipe.run, settings.num
    generated = GeneratedSet.create(out, method="dualanodiff", object=run.settings.object,
                                    anomaly=run.settings.anomaly,
                                    settings=settings.recorded(pipe.backgrounds is not None),
                                    producer=f"run {run.identity()}", run=str(run.root),
                                    data_root=run.settings.data_root, split=run.split())
    if settings.export_mvtec is not None:
        generated.mvtec_folders(settings.export_mvtec)
    if settings.export_anomalib is not None:  # a target that cannot be made fails before any sample
        Path(settings.export_anomalib).mkdir(parents=True, exist_ok=True)
    done = generated.completed_indices()
    # Fixed batches 0..B-1, B..2B-1, ... dealt out to the processes: a batch is always made whole, so its
    # samples come out bit for bit the same whatever the process count or restart (a CPU's float sums can
    # change with a batch's size); only its missing samples are written.
    batches = [range(start, min(start + settings.batch_size, num)) for start in range(0, num, settings.batch_size)]
    todo = [batch for number, batch in enumerate(batches)
            if number % num_processes == process_index and not done.issuperset(batch)]
    bar = progress(total=sum(len(set(batch) - done) for batch in todo),
                    desc=f"generating {run.settings.object}/{run.settings.anomaly}", unit="pair")
    for batch in todo:
        output = pipe(batch, seed=settings.seed, steps=settings.steps, guidance=settings.guidance,
                      segmenter=segmenter, background_every=settings.background_every, progress=False)
        for image, part, mask, record in zip(output.images, output.anomaly_parts, output.masks, output.records,
                                             strict=True):
            index = record.pop("index")
            if index not in done:
                generated.write_sample(index, image, part, mask, record)
                bar.update(1)
    bar.close()
    # With several processes, the one that finds every sample written (the last to finish) writes the summary.
    if generated.completed_indices() >= set(range(num)):
        records = [sample.record for sample in generated.samples()]
        generated.finalize(summarise(records))
        if settings.export_mvtec is not None:
            generated.export_mvtec(settings.export_mvtec)
        if settings.export_anomalib is not None:
            source = load_source(run.settings.data_root, run.settings.layout)
            generated.export_anomalib(settings.export_anomalib, source.normal_train(run.settings.object),
                                      source.normal_test(run.settings.object))
    return generated
