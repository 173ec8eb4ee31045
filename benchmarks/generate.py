"""Time generation (both branches, classifier-free guidance, VAE decode, masks) per pair, by batch size and fusion.

    python -m benchmarks.generate --tiny --device cpu --threads 1 --steps 20 --json tiny-generate.json
    python -m benchmarks.generate --json sd15-generate.json      # SD 1.5 architecture, GPU: 50 steps, batch 16

Each timed run is one whole `DualAnoDiffPipeline` call (the same code `dualanodiff generate` runs): starting noise,
text, every denoising step of both branches (guided: an unconditional and a conditional half), VAE decode, and the
mask of every pair. The pipeline is built in memory around a model with random adapters (no run folder): speed does
not depend on the weight values. Variants, side by side in one process (warm-up first, then interleaved, medians):
- batch B, fused: the branch LoRAs folded into per-stream projection weights (what `from_pretrained` does);
- batch B, unfused: the LoRA updates computed on the fly, at the largest batch;
- batch B, fused, compiled (--compile): `unet.compile()` (as `generate --compile` does), timed after the others.

Ratios: batch_speedup = pairs/s at the largest batch over pairs/s at the smallest; fused_vs_unfused_speedup. The floor
per pair is the FLOPs of a whole call (torch.utils.flop_counter: UNet steps, text, decode) over the device's measured
matrix throughput, divided by the batch.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    MiB,
    Variant,
    add_common_arguments,
    build_architecture,
    count_flops,
    dtype_name,
    environment,
    matmul_flops_per_second,
    memory_method,
    module_tensors,
    publish,
    randomise_adapters,
    resolve_settings,
    run_side_by_side,
    tensor_bytes,
    timed,
    write_profile,
)
from dualanodiff.generation.pipeline import DualAnoDiffPipeline
from dualanodiff.model.config import DualConfig
from dualanodiff.model.dual import DualAnoDiffModel
from dualanodiff.training import Run, TrainSettings


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    add_common_arguments(parser, repeats=3, warmup=1)
    parser.add_argument("--batches", default="1,16", help="pairs per call, comma-separated (default 1,16)")
    parser.add_argument("--steps", type=int, default=50, help="denoising steps (default 50, as the paper)")
    parser.add_argument("--guidance", type=float, default=2.5, help="classifier-free guidance scale (1: none)")
    parser.add_argument("--no-unfused", action="store_true", help="skip the unfused variant")
    args = parser.parse_args(argv)
    settings = resolve_settings(args)
    device, dtype = settings.device, settings.dtype
    batches = sorted({int(b) for b in args.batches.split(",")})
    if batches[0] < 1:
        raise SystemExit("error: --batches must be positive")
    arch = build_architecture(args.tiny, device, args.resolution)

    model = DualAnoDiffModel(arch.base, DualConfig(rank=arch.rank))
    randomise_adapters(model, args.seed)
    model.to(device, dtype)  # as from_pretrained does: the adapters are fixed, everything in the inference dtype
    processors = model.unet.attn_processors
    model.fuse_adapters()
    fused = {name: processor.fused for name, processor in processors.items()}
    run = Run(Path("."), TrainSettings(data_root="-", object="benchmark", anomaly="random",
                                       resolution=arch.resolution, model=model.config))
    pipe = DualAnoDiffPipeline(model, run, scheduler="ddim")

    def set_fused(on: bool):
        def activate() -> None:
            for name, processor in processors.items():
                processor.fused = fused[name] if on else None
        return activate

    def call(batch: int, steps: int = args.steps):
        return lambda: pipe(batch, seed=args.seed, steps=steps, guidance=args.guidance, progress=False)

    weights = lambda: tensor_bytes(module_tensors(model))  # noqa: E731
    weights_and_fused = lambda: tensor_bytes([*module_tensors(model),  # noqa: E731
                                              *(w for f in fused.values() for w in f.values())])
    largest = batches[-1]
    batch_of = {f"batch {b}, fused": b for b in batches}
    variants = [Variant(name, call(b), set_fused(True), weights_and_fused) for name, b in batch_of.items()]
    if not args.no_unfused:
        batch_of[f"batch {largest}, unfused"] = largest
        variants.append(Variant(f"batch {largest}, unfused", call(largest), set_fused(False), weights))
    print(f"timing {len(variants)} variants on {arch.name} ({device}, {dtype_name(dtype)}, {args.steps} steps, "
          f"guidance {args.guidance}, {settings.threads} threads): {args.warmup} warm-up + {args.repeats} timed "
          "calls each", flush=True)
    run_side_by_side(variants, device, repeats=args.repeats, warmup=args.warmup)

    if args.compile:
        set_fused(True)()
        model.unet.compile()
        compile_seconds = timed(call(largest), device)  # the first call compiles
        compiled = Variant(f"batch {largest}, fused, compiled", call(largest), persistent=weights_and_fused)
        run_side_by_side([compiled], device, repeats=args.repeats, warmup=args.warmup)
        variants.append(compiled)
        batch_of[compiled.name] = largest

    # The floor: a whole call's FLOPs = one 1-step call + (steps - 1) more UNet passes.
    set_fused(True)()
    write_profile(args.profile, call(largest, 2), device, f"one fused call of 2 steps, {arch.name}, batch {largest}")
    one_step = count_flops(call(largest, 1))
    two_steps = count_flops(call(largest, 2))
    call_flops = one_step + (args.steps - 1) * (two_steps - one_step)
    throughput = matmul_flops_per_second(device, dtype)

    rows = []
    for v in variants:
        per_pair = v.median / batch_of[v.name]
        rows.append({"variant": v.name, "arch": arch.name, "device": device.type, "dtype": dtype_name(dtype),
                     "steps": args.steps, "threads": settings.threads, "s/call": v.median, "s/pair": per_pair,
                     "pairs/s": 1 / per_pair, "peak MiB": v.peak_bytes / MiB})
    by_name = {row["variant"]: row for row in rows}
    fused_largest = by_name[f"batch {largest}, fused"]
    floor_per_pair = call_flops / throughput / largest
    results: dict[str, Any] = {
        "benchmark": "generate",
        "environment": environment(settings),
        "settings": {"arch": arch.name, "resolution": arch.resolution, "rank": arch.rank, "dtype": dtype_name(dtype),
                     "steps": args.steps, "guidance": args.guidance, "batches": batches, "repeats": args.repeats,
                     "warmup": args.warmup},
        "rows": rows,
        "batch_speedup": fused_largest["pairs/s"] / by_name[f"batch {batches[0]}, fused"]["pairs/s"],
        "fused_vs_unfused_speedup": (by_name[f"batch {largest}, unfused"]["s/call"] / fused_largest["s/call"]
                                     if not args.no_unfused else None),
        "floor": {"call_flops": call_flops, "batch": largest, "unet_step_flops": two_steps - one_step,
                  "matmul_flops_per_second": throughput, "floor_seconds_per_pair": floor_per_pair},
        "memory_method": memory_method(device),
    }
    if args.compile:
        results["compile_seconds"] = compile_seconds
    notes = [f"pairs/s at batch {largest} over batch {batches[0]}: {results['batch_speedup']:.3f}"]
    if results["fused_vs_unfused_speedup"] is not None:
        notes.append(f"fused vs unfused LoRA at batch {largest} (unfused time / fused time): "
                     f"{results['fused_vs_unfused_speedup']:.3f}")
    notes += [f"floor: {call_flops / 1e12:.4g} TFLOP per call of {largest} pairs / {throughput / 1e12:.4g} TFLOP/s "
              f"measured {dtype_name(dtype)} matmul = {floor_per_pair:.4g} s per pair "
              f"(one guided UNet step of the batch: {(two_steps - one_step) / 1e12:.4g} TFLOP)",
              f"peak memory: {memory_method(device)}"]
    if args.compile:
        notes.append(f"compile: first compiled call took {compile_seconds:.1f} s")
    return publish(results, f"Generation, {arch.name} architecture, {arch.resolution} px", rows, notes, args.json)


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"generate benchmark finished in {time.perf_counter() - started:.0f} s")
