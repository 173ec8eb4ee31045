"""What both benchmarks share: the architectures, side-by-side timing, memory, FLOP floors, tables and JSON.

Architectures: `--tiny` is the tiny preset's own base (`build_tiny_base`, 64 px); the default is Stable Diffusion
1.5's architecture built from its configuration with random weights (timing does not depend on the weight values, and
nothing is downloaded), at 512 px.

Memory, per variant: the bytes of its own persistent tensors (weights, fused weights, optimizer state) plus the rise
of memory over one step or call, measured in a step of its own (never a timed one):
- CUDA: torch.cuda.max_memory_allocated() minus torch.cuda.memory_allocated() before the step;
- CPU: the process's resident set size, sampled every 0.5 ms by a psutil thread, minus the RSS before the step
  (freed memory that the allocator keeps counts as used; it is an upper bound).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, register_flop_formula, sdpa_flop_count
from transformers import CLIPTextConfig, CLIPTextModel

from dualanodiff.io import write_json
from dualanodiff.model.base import BaseModel, LatentCodec
from dualanodiff.model.dual import DualAnoDiffModel
from dualanodiff.model.tiny import TINY_RESOLUTION, build_tiny_base, build_tokenizer

REPO_ROOT = Path(__file__).resolve().parent.parent
MiB = 2**20

# --- Stable Diffusion 1.5's architecture (the configs of stable-diffusion-v1-5's unet/, vae/, text_encoder/) -----
SD15_RESOLUTION = 512
SD15_PROMPT_TOKENS = 77
SD15_UNET = {
    "sample_size": 64, "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
    "block_out_channels": (320, 640, 1280, 1280),
    "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    "attention_head_dim": 8, "cross_attention_dim": 768, "norm_num_groups": 32, "norm_eps": 1e-5,
    "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "act_fn": "silu",
    "mid_block_scale_factor": 1, "center_input_sample": False,
}
SD15_VAE = {
    "in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 2, "sample_size": 512,
    "block_out_channels": (128, 256, 512, 512), "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4, "norm_num_groups": 32, "act_fn": "silu", "scaling_factor": 0.18215,
}
SD15_TEXT = {"vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
             "num_attention_heads": 12, "max_position_embeddings": SD15_PROMPT_TOKENS, "hidden_act": "quick_gelu",
             "projection_dim": 768}
SD15_SCHEDULER = {"_class_name": "DDPMScheduler", "num_train_timesteps": 1000, "beta_start": 0.00085,
                  "beta_end": 0.012, "beta_schedule": "scaled_linear", "prediction_type": "epsilon",
                  "clip_sample": False, "set_alpha_to_one": False, "steps_offset": 1}
SD15_RANK = 32  # the sd15 preset's LoRA rank
TINY_RANK = 16  # the tiny preset's


def build_sd15_base(device: torch.device, seed: int = 0) -> BaseModel:
    """SD 1.5's UNet, VAE and CLIP text encoder with random weights, made on `device` (float32).

    The tokenizer is the tiny preset's (a CLIP tokenizer with a small vocabulary) padding to SD's 77 tokens: its ids
    are valid for the 49408-token embedding, and the text encoder's cost depends on the token count alone."""
    tokenizer = build_tokenizer()
    tokenizer.model_max_length = SD15_PROMPT_TOKENS
    text_config = CLIPTextConfig(**SD15_TEXT, bos_token_id=tokenizer.bos_token_id,
                                 eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng(devices=[]), torch.device(device):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(**SD15_UNET)
        vae = AutoencoderKL(**SD15_VAE)
        text_encoder = CLIPTextModel(text_config).eval()
    return BaseModel(unet=unet, codec=LatentCodec(vae), text_encoder=text_encoder, tokenizer=tokenizer,
                     scheduler_config=dict(SD15_SCHEDULER), name="sd15-architecture-random-weights")


@dataclass
class Architecture:
    name: str
    base: BaseModel
    resolution: int
    rank: int


def build_architecture(tiny: bool, device: torch.device, resolution: int | None = None) -> Architecture:
    if tiny:
        resolution = resolution or TINY_RESOLUTION
        return Architecture("tiny", build_tiny_base(resolution), resolution, TINY_RANK)
    resolution = resolution or SD15_RESOLUTION
    if resolution % 64:  # the VAE's 8x and the UNet's three 2x down-samplings
        raise SystemExit(f"error: the SD 1.5 architecture needs a multiple of 64 px (got --resolution {resolution})")
    return Architecture("sd15", build_sd15_base(device), resolution, SD15_RANK)


def randomise_adapters(model: DualAnoDiffModel, seed: int = 0) -> None:
    """Give the fresh adapters non-zero updates (the LoRA up-projections, peft's lora_B and SAIM's output start at
    zero), so that every code path changes the result; timing does not depend on the values."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.requires_grad and {"up", "lora_B", "proj_out"} & set(name.split(".")):
                param.copy_(torch.randn(param.shape, generator=generator) * 0.02)


# --- settings --------------------------------------------------------------------------------------------------
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def add_common_arguments(parser: argparse.ArgumentParser, *, repeats: int, warmup: int) -> None:
    parser.add_argument("--tiny", action="store_true",
                        help="the tiny preset's architecture at 64 px (default: SD 1.5's architecture at 512 px)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when there is one)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default=None,
                        help="mixed precision / inference dtype (default: bf16 on CUDA, fp32 on CPU)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: 1 on CPU, where the tiny UNet runs as fast on 1 as on 2 "
                             "and parallel test jobs slow each other down; left alone on CUDA)")
    parser.add_argument("--resolution", type=int, default=None,
                        help="image side in pixels (default 64 tiny, 512 SD 1.5; a small one makes a quick smoke test)")
    parser.add_argument("--repeats", type=int, default=repeats, help="timed runs of each variant (median taken)")
    parser.add_argument("--warmup", type=int, default=warmup, help="untimed runs of each variant first")
    parser.add_argument("--compile", action="store_true",
                        help="also time the UNet under torch.compile (after the others: it is compiled in place)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--profile", type=Path, default=None, metavar="PATH",
                        help="also write torch.profiler's table of the operators of one run of the main variant")
    parser.add_argument("--seed", type=int, default=0)


@dataclass
class Settings:
    device: torch.device
    dtype: torch.dtype
    threads: int


def resolve_settings(args: argparse.Namespace) -> Settings:
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = DTYPES[args.dtype or ("bf16" if device.type == "cuda" else "fp32")]
    threads = args.threads if args.threads is not None else (1 if device.type == "cpu" else torch.get_num_threads())
    if args.repeats < 1 or args.warmup < 0:
        raise SystemExit("error: --repeats must be at least 1 and --warmup at least 0")
    torch.set_num_threads(threads)
    torch.manual_seed(args.seed)
    return Settings(device, dtype, threads)


def dtype_name(dtype: torch.dtype) -> str:
    return {value: key for key, value in DTYPES.items()}[dtype]


# --- timing ----------------------------------------------------------------------------------------------------
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


@dataclass
class Variant:
    """One thing to time: `activate` puts the shared model in its state (not timed), `run` is what is timed."""

    name: str
    run: Callable[[], Any]
    activate: Callable[[], None] = lambda: None
    persistent: Callable[[], int] = lambda: 0  # bytes of its own persistent tensors
    times: list[float] = field(default_factory=list)
    peak_bytes: int | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def run_side_by_side(variants: list[Variant], device: torch.device, *, repeats: int, warmup: int) -> None:
    """Warm every variant up, measure its memory in one more untimed run (once every variant has run, so that no
    variant's figure carries the process's one-time allocations), then interleave the timed runs."""
    for variant in variants:
        variant.activate()
        for _ in range(warmup):
            variant.run()
    for variant in variants:
        variant.activate()
        with memory_rise(device) as rise:
            variant.run()
        variant.peak_bytes = variant.persistent() + rise()
    for _ in range(repeats):
        for variant in variants:
            variant.activate()
            variant.times.append(timed(variant.run, device))


# --- memory ----------------------------------------------------------------------------------------------------
def tensor_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes of the distinct storages among `tensors` (shared storages count once)."""
    seen: dict[int, int] = {}
    for tensor in tensors:
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


def module_tensors(*modules: nn.Module) -> Iterator[torch.Tensor]:
    for module in modules:
        yield from module.parameters()
        yield from module.buffers()


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> Iterator[torch.Tensor]:
    for state in optimizer.state.values():
        yield from (value for value in state.values() if isinstance(value, torch.Tensor))


@contextlib.contextmanager
def memory_rise(device: torch.device) -> Iterator[Callable[[], int]]:
    """Yields a function that returns, after the block, how far memory rose above its level at the start."""
    result = {"rise": 0}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        yield lambda: result["rise"]
        torch.cuda.synchronize(device)
        result["rise"] = torch.cuda.max_memory_allocated(device) - before
        return
    import psutil

    process = psutil.Process()
    before = process.memory_info().rss
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.0005):
            peak[0] = max(peak[0], process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield lambda: result["rise"]
    finally:
        done.set()
        sampler.join()
        result["rise"] = max(peak[0], process.memory_info().rss) - before


def memory_method(device: torch.device) -> str:
    if device.type == "cuda":
        return "persistent tensors + rise of torch.cuda.max_memory_allocated over one untimed run"
    return "persistent tensors + rise of the process RSS over one untimed run (psutil, sampled every 0.5 ms)"


# --- floors: counted FLOPs over measured matrix throughput -----------------------------------------------------
def _register_cpu_attention_flops() -> None:
    """torch's FLOP counter knows the CUDA attention kernels; teach it the CPU one, so CPU counts include attention."""
    ops = torch.ops.aten
    try:
        @register_flop_formula(ops._scaled_dot_product_flash_attention_for_cpu)
        def _forward(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
            return sdpa_flop_count(query_shape, key_shape, value_shape)

        @register_flop_formula(ops._scaled_dot_product_flash_attention_for_cpu_backward)
        def _backward(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
            # The backward pass costs twice the forward's matrix products (as torch's CUDA formula counts it).
            return 2 * sdpa_flop_count(query_shape, key_shape, value_shape)
    except (AttributeError, RuntimeError, ValueError):  # an older torch, or already registered
        pass


_register_cpu_attention_flops()


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of the matrix products, convolutions and attention that `fn` runs (torch.utils.flop_counter)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def matmul_flops_per_second(device: torch.device, dtype: torch.dtype) -> float:
    """The device's measured matrix-product throughput in `dtype` (the floor's denominator)."""
    size = 8192 if device.type == "cuda" else 1024
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    seconds = statistics.median(timed(lambda: a @ b, device) for _ in range(10 if device.type == "cuda" else 5))
    return 2 * size**3 / seconds


def write_profile(path: Path | None, fn: Callable[[], Any], device: torch.device, title: str) -> None:
    """torch.profiler's per-operator table of one run of `fn`, slowest first (device time on CUDA)."""
    if path is None:
        return
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as profiler:
        fn()
        synchronize(device)
    sort_by = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    table = profiler.key_averages().table(sort_by=sort_by, row_limit=40, max_name_column_width=70)
    path.write_text(f"{title}\n\n{table}\n")
    print(f"profile written to {path}")


# --- environment, tables, JSON ---------------------------------------------------------------------------------
def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "benchmarks"], cwd=REPO_ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("DUALANODIFF_COMMIT", "unknown (no git checkout)")
    return commit + ("+uncommitted changes" if dirty else "")


def environment(settings: Settings) -> dict[str, Any]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": f"{_cpu_model()}, {cores} cores",
        "device": str(settings.device),
        "torch": torch.__version__,
        "commit": _git_commit(),
        "threads": settings.threads,
    }
    if settings.device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(settings.device)
    return info


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def print_table(title: str, rows: list[dict[str, Any]], notes: list[str]) -> str:
    """Prints (and returns) a Markdown table of `rows` (same keys in each) with `notes` below it."""
    columns = list(rows[0])
    cells = [[format_value(row[column]) for column in columns] for row in rows]
    widths = [max(len(column), *(len(row[i]) for row in cells)) for i, column in enumerate(columns)]
    lines = [f"### {title}", "",
             "| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |",
             "| " + " | ".join("-" * w for w in widths) + " |"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    lines += ["", *notes, ""]
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def publish(results: dict[str, Any], title: str, rows: list[dict[str, Any]], notes: list[str],
            json_path: Path | None) -> dict[str, Any]:
    """Print the table with its notes and the run's date, machine, torch and commit; keep it in `results` and
    write `results` as JSON when asked."""
    env = results["environment"]
    notes = [*notes, f"{env['date']}, {env.get('gpu', env['cpu'])}, torch {env['torch']}, commit {env['commit']}"]
    results["table"] = print_table(title, rows, notes)
    if json_path is not None:
        write_json(json_path, json.loads(json.dumps(results, default=str)))
        print(f"figures written to {json_path}")
    return results
