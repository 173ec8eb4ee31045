"""Train the tiny base model that ships with the package for `dualanodiff demo`.

    python tools/make_demo_base.py [--work DIR] [--from-trained MODEL_DIR]

Writes the built-in synthetic data set (seed 0, 256 px), pre-trains the tiny preset's base on the 60 normal
training images of its `washer` with `dualanodiff.training.tiny_base.pretrain_tiny_base` (about 25 minutes on one core
of a laptop CPU), and stores it in half precision with its provenance in
src/dualanodiff/assets/tiny-base-washer/ (base.json). `--from-trained` packages a base already trained with
these settings instead of training again.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import torch

from dualanodiff.data import load_source, write_synthetic
from dualanodiff.demo import DEMO_OBJECT, SHIPPED_BASE
from dualanodiff.io import write_json
from dualanodiff.model.base import load_base_model
from dualanodiff.training.settings import TinyBaseSettings
from dualanodiff.training.tiny_base import pretrain_tiny_base

DATA = {"seed": 0, "size": 256}
SETTINGS = TinyBaseSettings(resolution=64, steps=2000, batch_size=16, lr=5e-4, seed=0, prompt="a vfx",
                            flip_horizontal=True, flip_vertical=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    parser.add_argument("--from-trained", type=Path, help="a model folder trained with these settings")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="demo-base-"))
    model_dir = args.from_trained
    if model_dir is None:
        data = write_synthetic(work / "data", **DATA)
        normals = load_source(data).normal_train(DEMO_OBJECT)
        model_dir = pretrain_tiny_base(normals, work / "pretrain", SETTINGS)
    base = load_base_model(model_dir)
    base.unet.to(torch.float16)  # halves the file; training and generation cast the frozen base back
    shutil.rmtree(SHIPPED_BASE, ignore_errors=True)
    base.save_pretrained(SHIPPED_BASE)
    write_json(SHIPPED_BASE / "base.json", {
        "what": "the tiny preset's base model for `dualanodiff demo`, trained by the dualanodiff project",
        "trained_on": {"data_set": "dualanodiff synth", **DATA, "object": DEMO_OBJECT, "images": "train/good"},
        "settings": {**SETTINGS.to_dict(), "prediction_type": base.prediction_type, "ema_decay": 0.999},
        "reproduce": "python tools/make_demo_base.py",
    })
    print(f"wrote {SHIPPED_BASE}")


if __name__ == "__main__":
    main()
