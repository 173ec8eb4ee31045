"""Time one training step of the dual-branch model against the per-branch-loop reference and a plain UNet step.

    python -m benchmarks.train_step --tiny --device cpu --threads 1 --json tiny-train.json
    python -m benchmarks.train_step --gradient-checkpointing --json sd15-train.json     # SD 1.5 architecture, GPU

Variants, run side by side in one process on one shared UNet (warm-up first, then interleaved, medians):
- dual: our model (DualAnoDiffModel): frozen projections once over the whole (b f) batch, per-branch LoRA batched,
  SAIM, text-encoder LoRA; the step is `training.fit`'s (accelerate autocast and loss scaling, clipping, AdamW).
- dual-ckpt (--gradient-checkpointing): the same with the UNet's gradient checkpointing on.
- loop: the same weights through `reference.LoopDualAttnProcessor` (the released code's per-branch loop).
- plain: full fine-tuning of a same-architecture UNet (float32 weights, default attention, no LoRA or SAIM) on the same
  (b f) batch and loss; the text encoder runs without gradient.
- dual-compiled (--compile): `unet.compile()` (as `train --compile` does), timed after the others.

Ratios: dual_vs_loop_speedup = loop / dual (goal >= 1.5 on the tiny preset); dual_vs_plain_ratio = dual / plain
(the price of LoRA and SAIM; goal <= 1.35). The floor is the dual step's FLOPs (torch.utils.flop_counter, forward and
backward) over the device's measured matrix throughput in the step's dtype.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
from accelerate import Accelerator
from diffusers import DDPMScheduler, UNet2DConditionModel
from torch import nn

from benchmarks.harness import (
    MiB,
    Settings,
    Variant,
    add_common_arguments,
    build_architecture,
    count_flops,
    dtype_name,
    environment,
    matmul_flops_per_second,
    memory_method,
    module_tensors,
    optimizer_tensors,
    publish,
    randomise_adapters,
    resolve_settings,
    run_side_by_side,
    synchronize,
    tensor_bytes,
    timed,
    write_profile,
)
from benchmarks.reference import ProcessorSwitch
from dualanodiff.model.config import DualConfig
from dualanodiff.model.dual import DualAnoDiffModel
from dualanodiff.training.loop import GRADIENT_CLIP, frozen_dtype, make_accelerator

MIXED_PRECISION = {torch.float32: "no", torch.bfloat16: "bf16", torch.float16: "fp16"}


class PlainFineTuning(nn.Module):
    """Full fine-tuning of a UNet on the dual model's batch and loss, without LoRA, SAIM or the branch processors."""

    def __init__(self, unet: UNet2DConditionModel, dual: DualAnoDiffModel):
        super().__init__()
        self.unet = unet
        self.noise_scheduler = DDPMScheduler.from_config(dual.scheduler_config)
        self._dual_text = dual.text_embeddings

    def text_embeddings(self, groups: int) -> torch.Tensor:
        with torch.no_grad():
            return self._dual_text(groups)

    def predict(self, latents: torch.Tensor, timesteps: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return self.unet(latents, timesteps, encoder_hidden_states=text).sample

    # The loss is exactly the dual model's (noising, target, per-branch MSE); only `predict` differs.
    forward = DualAnoDiffModel.forward


def make_training_accelerator(settings: Settings) -> Accelerator:
    mixed_precision = MIXED_PRECISION[settings.dtype]
    if settings.device.type == "cpu":
        return Accelerator(mixed_precision=mixed_precision, cpu=True)
    return make_accelerator(mixed_precision)


def training_step(accelerator: Accelerator, model: nn.Module, optimizer: torch.optim.Optimizer,
                  batch: tuple[torch.Tensor, ...]):
    """`training.fit`'s step on a fixed batch: forward, backward (loss-scaled under fp16), clipping, AdamW."""
    parameters = [param for param in model.parameters() if param.requires_grad]

    def step() -> float:
        loss, _ = model(*batch)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(parameters, GRADIENT_CLIP)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    return step


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    add_common_arguments(parser, repeats=7, warmup=2)
    parser.add_argument("--batch", type=int, default=4, help="image pairs per step (the (b f) batch is twice that)")
    parser.add_argument("--variants", default="dual,loop,plain",
                        help="comma-separated, of dual, loop, plain, bcm (default: dual,loop,plain; dual always "
                             "runs; bcm: the dual step with BCM's background stream, a second model)")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="also time dual-ckpt")
    args = parser.parse_args(argv)
    chosen = {"dual", *args.variants.split(",")}
    known = {"dual", "loop", "plain", "bcm"}
    if chosen - known:
        raise SystemExit(f"error: unknown variants {sorted(chosen - known)}")
    settings = resolve_settings(args)
    device = settings.device
    arch = build_architecture(args.tiny, device, args.resolution)
    accelerator = make_training_accelerator(settings)

    base = arch.base
    for frozen in (base.unet, base.text_encoder, base.codec):
        frozen.to(device, frozen_dtype(accelerator))
    model = DualAnoDiffModel(base, DualConfig(rank=arch.rank)).to(device)
    randomise_adapters(model, args.seed)
    model.train()
    switch = ProcessorSwitch(model.unet)
    parameters = [param for param in model.parameters() if param.requires_grad]
    dual_model, dual_optimizer = accelerator.prepare(model, torch.optim.AdamW(parameters, lr=1e-5))

    latent_side = arch.resolution // base.codec.downscale
    shape = (args.batch, 2, base.unet.config.in_channels, latent_side, latent_side)
    generator = torch.Generator().manual_seed(args.seed)
    batch = tuple(x.to(device) for x in (torch.randn(shape, generator=generator),
                                         torch.randn(shape, generator=generator),
                                         torch.randint(0, 1000, (args.batch,), generator=generator)))
    dual_step = training_step(accelerator, dual_model, dual_optimizer, batch)
    frozen_and_adapters = lambda: tensor_bytes(  # noqa: E731
        [*module_tensors(model), *optimizer_tensors(dual_optimizer)])

    def use(batched: bool, checkpointing: bool):
        def activate() -> None:
            switch.use_batched() if batched else switch.use_loop()
            (model.unet.enable_gradient_checkpointing if checkpointing
             else model.unet.disable_gradient_checkpointing)()
        return activate

    variants = [Variant("dual", dual_step, use(True, False), frozen_and_adapters)]
    if args.gradient_checkpointing:
        variants.append(Variant("dual-ckpt", dual_step, use(True, True), frozen_and_adapters))
    if "loop" in chosen:
        variants.append(Variant("loop", dual_step, use(False, False), frozen_and_adapters))
    if "plain" in chosen:
        with torch.device(device):  # made on the device: SD 1.5's 860 M weights initialise slowly on a CPU
            plain_unet = UNet2DConditionModel.from_config(base.unet.config).train()
        plain = PlainFineTuning(plain_unet, model)
        plain_model, plain_optimizer = accelerator.prepare(plain, torch.optim.AdamW(plain_unet.parameters(), lr=1e-5))
        variants.append(Variant("plain", training_step(accelerator, plain_model, plain_optimizer, batch),
                                persistent=lambda: tensor_bytes([*module_tensors(plain_unet, model.text_encoder),
                                                                 *optimizer_tensors(plain_optimizer)])))
    if "bcm" in chosen:
        bcm_base = build_architecture(args.tiny, device, args.resolution).base
        for frozen in (bcm_base.unet, bcm_base.text_encoder, bcm_base.codec):
            frozen.to(device, frozen_dtype(accelerator))
        bcm_model = DualAnoDiffModel(bcm_base, DualConfig(rank=arch.rank, bcm=True)).to(device)
        randomise_adapters(bcm_model, args.seed)
        bcm_model.train()
        bcm_parameters = [param for param in bcm_model.parameters() if param.requires_grad]
        bcm_wrapped, bcm_optimizer = accelerator.prepare(bcm_model, torch.optim.AdamW(bcm_parameters, lr=1e-5))
        bcm_shape = (args.batch, 3, *shape[2:])  # the background is a third stream of each pair's group
        bcm_batch = tuple(x.to(device) for x in (torch.randn(bcm_shape, generator=generator),
                                                 torch.randn(bcm_shape, generator=generator), batch[2].cpu()))
        variants.append(Variant("dual-bcm", training_step(accelerator, bcm_wrapped, bcm_optimizer, bcm_batch),
                                persistent=lambda: tensor_bytes([*module_tensors(bcm_model),
                                                                 *optimizer_tensors(bcm_optimizer)])))
    print(f"timing {', '.join(v.name for v in variants)} on {arch.name} ({device}, {dtype_name(settings.dtype)}, "
          f"batch {args.batch} pairs, {settings.threads} threads): {args.warmup} warm-up + {args.repeats} timed "
          "steps each", flush=True)
    run_side_by_side(variants, device, repeats=args.repeats, warmup=args.warmup)

    if args.compile:
        use(True, False)()
        model.unet.compile()
        compile_seconds = timed(dual_step, device)  # the first step compiles
        compiled = Variant("dual-compiled", dual_step, persistent=frozen_and_adapters)
        run_side_by_side([compiled], device, repeats=args.repeats, warmup=args.warmup)
        variants.append(compiled)

    # The floor: the dual step's counted FLOPs over the measured matrix throughput.
    use(True, False)()
    write_profile(args.profile, dual_step, device, f"one dual training step, {arch.name}, batch {args.batch} pairs")
    def forward_backward() -> None:
        loss, _ = dual_model(*batch)
        accelerator.backward(loss)
    step_flops = count_flops(forward_backward)
    dual_optimizer.zero_grad(set_to_none=True)
    synchronize(device)
    throughput = matmul_flops_per_second(device, settings.dtype)

    by_name = {v.name: v for v in variants}
    dual_seconds = by_name["dual"].median
    rows = [{"variant": v.name, "arch": arch.name, "device": device.type, "dtype": dtype_name(settings.dtype),
             "batch (pairs)": args.batch, "threads": settings.threads, "s/step": v.median, "min s/step": min(v.times),
             "vs dual": v.median / dual_seconds, "peak MiB": v.peak_bytes / MiB,
             "achieved TFLOP/s": step_flops / v.median / 1e12 if v.name.startswith("dual") else None}
            for v in variants]
    results: dict[str, Any] = {
        "benchmark": "train_step",
        "environment": environment(settings),
        "settings": {"arch": arch.name, "resolution": arch.resolution, "batch_pairs": args.batch, "rank": arch.rank,
                     "dtype": dtype_name(settings.dtype), "repeats": args.repeats, "warmup": args.warmup},
        "rows": rows,
        "dual_vs_loop_speedup": by_name["loop"].median / dual_seconds if "loop" in by_name else None,
        "dual_vs_plain_ratio": dual_seconds / by_name["plain"].median if "plain" in by_name else None,
        "bcm_vs_dual_ratio": by_name["dual-bcm"].median / dual_seconds if "dual-bcm" in by_name else None,
        # The same ratios of the fastest steps: steadier than medians on a machine that other jobs share.
        "ratios_of_fastest_steps": {
            "dual_vs_loop_speedup": min(by_name["loop"].times) / min(by_name["dual"].times) if "loop" in by_name
            else None,
            "dual_vs_plain_ratio": min(by_name["dual"].times) / min(by_name["plain"].times) if "plain" in by_name
            else None},
        "floor": {"dual_step_flops": step_flops, "matmul_flops_per_second": throughput,
                  "floor_seconds": step_flops / throughput},
        "memory_method": memory_method(device),
    }
    if args.compile:
        results["compile_seconds"] = compile_seconds
    notes = []
    fastest = results["ratios_of_fastest_steps"]
    if results["dual_vs_loop_speedup"] is not None:
        notes.append(f"dual vs loop speedup (loop / dual): {results['dual_vs_loop_speedup']:.3f} "
                     f"(of the fastest steps: {fastest['dual_vs_loop_speedup']:.3f})")
    if results["dual_vs_plain_ratio"] is not None:
        notes.append(f"dual vs plain ratio (dual / plain): {results['dual_vs_plain_ratio']:.3f} "
                     f"(of the fastest steps: {fastest['dual_vs_plain_ratio']:.3f})")
    if results["bcm_vs_dual_ratio"] is not None:
        notes.append(f"BCM's price (dual-bcm / dual): {results['bcm_vs_dual_ratio']:.3f}")
    notes += [f"floor: {step_flops / 1e12:.4g} TFLOP per dual step (forward + backward) / "
              f"{throughput / 1e12:.4g} TFLOP/s measured {dtype_name(settings.dtype)} matmul = "
              f"{step_flops / throughput:.4g} s",
              f"peak memory: {memory_method(device)}"]
    if args.compile:
        notes.append(f"compile: first compiled step took {compile_seconds:.1f} s")
    return publish(results, f"Training step, {arch.name} architecture, {arch.resolution} px", rows, notes, args.json)


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"train_step benchmark finished in {time.perf_counter() - started:.0f} s")
