"""The generate job (`dualanodiff generate`): N (image, anomaly part, mask) triplets from a run, into a resumable
GEN folder.

Samples already in GEN are skipped, so an interrupted job continues where it stopped; with several processes
(`accelerate launch`), process p of P makes the fixed batches b with b % P == p, so the files are the same as one
process would write, and whichever process completes the set writes the summary (and the exports).
"""

from __future__ import annotations

from collections import Counter
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from dualanodiff.data import load_source
from dualanodiff.devices import process_device
from dualanodiff.generation.generated_set import REJECTS_SHEET, GeneratedSet
from dualanodiff.generation.pipeline import DualAnoDiffPipeline
from dualanodiff.generation.qc import REASONS, QualityGate
from dualanodiff.generation.settings import GenerateSettings
from dualanodiff.io import folder_lock
from dualanodiff.masks.anomaly import Segmenter, load_segmenter
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
    run = run if isinstance(run, Run) else Run.open(run)
    # The run's defaults filled in (and a strength it cannot draw with refused) before the GEN folder is touched.
    settings = settings.validate().for_run(run.settings.model.bcm, run.settings.windowed)
    # One writer per GEN folder (with several processes, the first holds it for all of them).
    holder = folder_lock(out, tidy=num_processes == 1) if process_index == 0 else nullcontext()
    with holder:
        return _generate(run, out, settings, process_index, num_processes)


def _generate(run: Run, out: str | Path, settings: GenerateSettings, process_index: int,
              num_processes: int) -> GeneratedSet:
    segmenter = load_segmenter(settings.mask_method)  # a bad mask method fails before the model loads
    pipe = DualAnoDiffPipeline.from_pretrained(run, device=process_device(settings.device),
                                               scheduler=settings.scheduler, backgrounds=settings.backgrounds,
                                               compile=settings.compile)
    run, num = pipe.run, settings.num
    gate = QualityGate.for_run(run, settings, pipe.backgrounds) if settings.qc == "on" else None
    generated = GeneratedSet.create(out, method="dualanodiff", object=run.settings.object,
                                    anomaly=run.settings.anomaly,
                                    settings=settings.recorded(pipe.backgrounds is not None),
                                    producer=f"run {run.identity()}", run=str(run.root),
                                    data_root=run.settings.data_root, split=run.split())
    if settings.export_mvtec is not None:
        generated.mvtec_folders(settings.export_mvtec)
    if settings.export_anomalib is not None:  # a target that cannot be made fails before any sample
        Path(settings.export_anomalib).mkdir(parents=True, exist_ok=True)
    tries = settings.qc_max_tries if gate is not None else 1
    settled = generated.completed_indices() | _given_up(generated, num, tries)
    # Fixed batches 0..B-1, B..2B-1, ... dealt out to the processes: a batch is always made whole, so its
    # samples come out bit for bit the same whatever the process count or restart (a CPU's float sums can
    # change with a batch's size); only its missing samples are written.
    batches = [range(start, min(start + settings.batch_size, num)) for start in range(0, num, settings.batch_size)]
    todo = [batch for number, batch in enumerate(batches)
            if number % num_processes == process_index and not settled.issuperset(batch)]
    bar = progress(total=sum(len(set(batch) - settled) for batch in todo),
                   desc=f"generating {run.settings.object}/{run.settings.anomaly}", unit="pair")
    for batch in todo:
        _make_batch(pipe, generated, gate, tries, list(batch), settled, settings, segmenter, bar)
    bar.close()
    # With several processes, the one that finds every sample settled (the last to finish) writes the summary.
    given_up = _given_up(generated, num, tries)
    if generated.completed_indices() | given_up >= set(range(num)):
        _finish(generated, run, settings, gate, given_up)
    return generated


def _make_batch(pipe: DualAnoDiffPipeline, generated: GeneratedSet, gate: QualityGate | None, tries: int,
                pending: list[int], settled: set[int], settings: GenerateSettings, segmenter: Segmenter,
                bar: Any) -> None:
    """One batch's samples. With QC, a rejected sample i is tried again as candidate i + k * num (k = 1, 2, ...)
    in a batch of the batch's rejected samples, so every try depends on the command alone."""
    for attempt in range(tries):
        output = pipe([index + attempt * settings.num for index in pending], seed=settings.seed,
                      steps=settings.steps, guidance=settings.guidance, segmenter=segmenter,
                      background_every=settings.background_every, bcm_unconditional=settings.bcm_unconditional,
                      bcm_noise=settings.bcm_noise, canvas=settings.canvas(), progress=False)
        rejected = []
        for index, image, part, mask, record in zip(pending, output.images, output.anomaly_parts, output.masks,
                                                    output.records, strict=True):
            candidate = record.pop("index")
            reason = gate.reason(mask, record) if gate is not None else None
            if reason is not None:
                generated.rejected.write_sample(candidate, image, part, mask, {**record, "sample": index,
                                                                               "reason": reason})
                rejected.append(index)
            elif index not in settled:
                generated.write_sample(index, image, part, mask,
                                       {**record, "candidate": candidate} if gate is not None else record)
                bar.update(1)
        pending = rejected
        if not pending:
            return


def _given_up(generated: GeneratedSet, num: int, tries: int) -> set[int]:
    """The samples whose every try QC rejected."""
    rejected = generated.rejected.completed_indices()
    return {index for index in range(num) if all(index + k * num in rejected for k in range(tries))}


def _finish(generated: GeneratedSet, run: Run, settings: GenerateSettings, gate: QualityGate | None,
            given_up: set[int]) -> None:
    """The summary (with QC's counts per reason) and the exports, once every sample is settled."""
    summary = summarise([sample.record for sample in generated.samples()])
    if gate is not None:
        reasons = Counter(sample.record["reason"] for sample in generated.rejected.samples())
        summary["qc"] = {"tried": summary["samples"] + sum(reasons.values()), "accepted": summary["samples"],
                         "rejected": {reason: reasons[reason] for reason in REASONS}, "given_up": len(given_up),
                         **gate.describe()}
        if reasons:
            generated.rejected.contact_sheet(generated.root / REJECTS_SHEET, max_rows=16,
                                             title=f"QC rejects: {dict(reasons)}")
    generated.finalize(summary)
    if settings.export_mvtec is not None:
        generated.export_mvtec(settings.export_mvtec)
    if settings.export_anomalib is not None:
        source = load_source(run.settings.data_root, run.settings.layout)
        generated.export_anomalib(settings.export_anomalib, source.normal_train(run.settings.object),
                                  source.normal_test(run.settings.object))
