"""BCM before and after the released code's choices, on washers whose backgrounds vary.

    python -m benchmarks.bcm --out bcm-cmp [--size 64 --base-steps 1000 --steps 400 --num 16]

Writes the synthetic set with varied backgrounds, object masks cut per image from its own border colour (the
default segmenter learns one background colour for the whole set, which this set does not have), trains two BCM
runs on the whole-image canvas that differ only in the background stream's LoRA (frozen: before; global: after),
and generates the same samples with
- before: frozen background stream, guidance 2.5, black unconditional background, one background noise per sample;
- after: global LoRA, guidance 2.0, grey unconditional background, background noise afresh at every step;
- after with black, after with fixed noise, before with global LoRA: one change at a time.
Each sample takes a background of its own (`background_every` 1). Prints mean background preservation (mean
|generated - background| outside the object, 0..1; lower keeps the background better), its spread over samples,
mean mask area and empty masks, and draws OUT/bcm.png.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import ndimage

from dualanodiff.data import load_rgb, write_synthetic
from dualanodiff.generation import GenerateSettings, generate
from dualanodiff.io import save_image
from dualanodiff.masks.anomaly import otsu_threshold
from dualanodiff.masks.components import fill_small_holes
from dualanodiff.model.config import DualConfig
from dualanodiff.training import Run, TrainSettings, train
from dualanodiff.viz import side_by_side

VARIANTS = {  # name: (run, guidance, unconditional background, background noise)
    "before": ("frozen", 2.5, "black", "fixed"),
    "after": ("global", 2.0, "grey", "per_step"),
    "after, black": ("global", 2.0, "black", "per_step"),
    "after, fixed noise": ("global", 2.0, "grey", "fixed"),
    "global LoRA only": ("global", 2.5, "black", "fixed"),
}


def _object_mask(image: np.ndarray) -> np.ndarray:
    """The object is what differs from this image's own border colour by more than Otsu's threshold of that
    difference (each washer here has a background of its own, so no one colour fits the set), largest part only,
    holes under a tenth of it filled."""
    border = np.concatenate([image[:3].reshape(-1, 3), image[-3:].reshape(-1, 3), image[:, :3].reshape(-1, 3),
                             image[:, -3:].reshape(-1, 3)]).astype(np.float32)
    smooth = ndimage.gaussian_filter(image.astype(np.float32), sigma=(1, 1, 0))
    difference = np.abs(smooth - np.median(border, axis=0)).max(axis=2) / 255
    mask = ndimage.binary_opening(difference > otsu_threshold(difference), iterations=1)
    labels, count = ndimage.label(mask)
    if count:
        mask = labels == 1 + int(np.argmax(ndimage.sum(mask, labels, range(1, count + 1))))
    return fill_small_holes(mask, 0.1 * mask.sum())


def _object_masks(data: Path, out: Path) -> Path:
    for path in sorted((data / "washer").glob("*/*/*.png")):
        if path.parts[-3] != "ground_truth":
            mask = _object_mask(np.asarray(load_rgb(path)))
            save_image(out / path.parent.relative_to(data / "washer") / path.name, mask.astype(np.uint8) * 255)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--base-steps", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--num", type=int, default=16)
    args = parser.parse_args(argv)
    data = write_synthetic(args.out / "data", seed=0, size=args.size, backgrounds="varied")
    masks = _object_masks(data, args.out / "object_masks")
    runs = {}
    for lora in ("frozen", "global"):
        folder = args.out / f"run-{lora}"
        settings = TrainSettings(data_root=str(data), object="washer", anomaly="rust", canvas="image",
                                 resolution=args.size, steps=args.steps, base_steps=args.base_steps,
                                 object_masks=str(masks), model=DualConfig(bcm=True, background_lora=lora))
        runs[lora] = train(settings, folder, resume=Run.is_run(folder))
    lines = ["| variant | background preservation (mean +- std) | mask area | empty masks |",
             "| --- | --- | --- | --- |"]
    sheets, figures = {}, {}
    for name, (lora, guidance, unconditional, noise) in VARIANTS.items():
        gen = generate(runs[lora], args.out / f"gen-{name.replace(', ', '-').replace(' ', '-')}",
                       GenerateSettings(num=args.num, guidance=guidance, bcm_unconditional=unconditional,
                                        bcm_noise=noise, batch_size=args.num, seed=1, qc="off",
                                        background_every=1))
        records = [sample.record for sample in gen.samples()]
        kept = [r["background_preservation"] for r in records if r.get("background_preservation") is not None]
        figures[name] = {"preservation": float(np.mean(kept)), "preservation_std": float(np.std(kept)),
                         "mask_area": float(np.mean([r["mask_area"] for r in records])),
                         "empty": sum(1 for r in records if not r["mask_area"])}
        f = figures[name]
        lines.append(f"| {name} | {f['preservation']:.4f} +- {f['preservation_std']:.4f} | "
                     f"{100 * f['mask_area']:.2f} % | {f['empty']} of {len(records)} |")
        sheets[name] = [sample.load()[0] for sample in gen.samples()[:6]]
    print("\n".join(lines))
    side_by_side(sheets, args.out / "bcm.png", title="BCM on varied backgrounds: the same seeds per row")
    (args.out / "results.json").write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
