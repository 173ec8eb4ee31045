"""`dualanodiff demo`: the whole job on a laptop, offline, in minutes.

Writes the built-in synthetic data set, trains the tiny preset with BCM on the washer's rust defects, generates
triplets and draws them as a contact sheet:

    DIR/data/                the synthetic data set (MVTec AD layout)
    DIR/run/                 the training run (config, split, weights, loss curve, object masks)
    DIR/generated/           the generated triplets (image/, fg/, mask/, meta.json)
    DIR/contact_sheet.png    rows of image | anomaly part | mask over the image

The tiny base it fine-tunes ships with the package (assets/tiny-base-washer, trained by this project on the same
synthetic washer images; its base.json holds the command that reproduces it), so the demo's minutes go to the
dual-branch training. With another --data-seed the base is pre-trained from scratch first, which takes longer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from dualanodiff.data import write_synthetic
from dualanodiff.generation import GenerateSettings, generate
from dualanodiff.io import read_json
from dualanodiff.model.config import DualConfig
from dualanodiff.training import Run, TrainSettings, train

SHIPPED_BASE = Path(__file__).parent / "assets" / "tiny-base-washer"
DEMO_OBJECT, DEMO_ANOMALY = "washer", "rust"
DEMO_SHEET = "contact_sheet.png"


@dataclass
class DemoSettings:
    steps: int | None = None  # the tiny preset's default
    num: int = 16
    generation_steps: int = 50
    guidance: float | None = None  # 2.0 with BCM (the released code), as generate chooses
    data_seed: int = 0
    data_size: int = 256
    seed: int = 32  # training and generation; the released code trains with seed 32


def shipped_base_for(data_seed: int, data_size: int) -> Path | None:
    """The shipped tiny base if it was trained on exactly this synthetic washer set, else None."""
    info_path = SHIPPED_BASE / "base.json"
    if not info_path.is_file():
        return None
    trained_on = read_json(info_path).get("trained_on", {})
    if trained_on.get("seed") == data_seed and trained_on.get("size") == data_size:
        return SHIPPED_BASE
    return None


@dataclass
class DemoResult:
    paths: dict[str, Path]
    seconds: dict[str, float]  # wall time per stage


def run_demo(out: str | Path, settings: DemoSettings | None = None) -> DemoResult:
    settings = settings or DemoSettings()
    out = Path(out)
    clock = time.perf_counter()
    seconds: dict[str, float] = {}

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = now - clock
        clock = now

    # Both stages' settings are built (and checked) before any work: a bad --num fails now, not after training.
    data_root = out / "data"
    base = shipped_base_for(settings.data_seed, settings.data_size)
    train_settings = TrainSettings(data_root=str(data_root), object=DEMO_OBJECT, anomaly=DEMO_ANOMALY,
                                   preset="tiny", base_model=str(base) if base else None, steps=settings.steps,
                                   seed=settings.seed, model=DualConfig(bcm=True)).validate()
    generate_settings = GenerateSettings(num=settings.num, steps=settings.generation_steps,
                                         guidance=settings.guidance, batch_size=settings.num,
                                         seed=settings.seed).validate()
    write_synthetic(data_root, seed=settings.data_seed, size=settings.data_size)
    lap("synthetic data")
    run_dir = out / "run"
    run = train(train_settings, run_dir, resume=Run.is_run(run_dir))
    lap("training")
    generated = generate(run, out / "generated", generate_settings)
    lap("generation")
    sheet = generated.contact_sheet(out / DEMO_SHEET, max_rows=settings.num,
                                    title=f"DualAnoDiff demo: {DEMO_OBJECT} / {DEMO_ANOMALY} (tiny preset)")
    lap("contact sheet")
    paths = {"data": data_root, "run": run_dir, "generated": generated.root, "contact_sheet": sheet}
    return DemoResult(paths, seconds)
