"""Downstream comparison: a localizer trained on each method's pairs, tested on the same held-out real defects.

    python -m benchmarks.localization --data ../shared/datasets/mvtec-screw-512 --object screw \
        --types scratch_head,thread_side --dual "runs/gen-screw-{type}" --num 64 --out cmp/screw \
        --resolution 256 --epochs 3 --base-width 16 --learning-rate 1e-3 --seeds 3

Methods, each with as many pairs per type as the dualanodiff GEN holds (at most `--num`) and the same
`evaluate localization` settings:
- `dualanodiff`: the GEN folders given by `--dual` (a pattern with {type});
- `croppaste`, `perlin` (and `cutpaste` with --cutpaste): `dualanodiff baseline`, at the dual GENs' image size;
- `mix`: the first half of each dualanodiff GEN and the first half of each croppaste GEN.

Prints one Markdown table (pixel AUROC / AP / F1-max and image AUROC, mean +- std over the seeds, percent; pixel
AP per type), the figures of how each method's pairs sit next to the real ones (grid score, mask pixels off the
object, median mask area over the real masks'), and each method's pixel AP minus croppaste's seed by seed (mean +-
std, and at how many seeds it is above). Writes OUT/table.md, OUT/results.json and OUT/sheets/<type>.png (real
pairs beside each method's). Every step is resumable: run the same command again after a stop.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from dualanodiff.data import load_mask, load_rgb, load_source, resized_mask, resized_rgb
from dualanodiff.evaluate.fidelity import area_ratio, grid_score, off_object_share
from dualanodiff.evaluate.metrics import paired_difference, percent
from dualanodiff.evaluate.settings import LocalizationSettings
from dualanodiff.generation import GeneratedSet
from dualanodiff.masks.objects import BorderColourSegmenter
from dualanodiff.viz import mask_overlay, side_by_side

COLUMNS = (("pixel_auroc", "pixel AUROC"), ("pixel_ap", "pixel AP"), ("pixel_f1_max", "pixel F1-max"),
           ("image_auroc", "image AUROC"))


def _cli(*args: object) -> None:
    command = [sys.executable, "-m", "dualanodiff", *map(str, args)]
    print("$", " ".join(command[2:]), flush=True)
    subprocess.run(command, check=True)


def _first(generated: GeneratedSet, count: int, out: Path) -> GeneratedSet:
    """A GEN of the first `count` samples of `generated` (copied once)."""
    if (out / "meta.json").is_file() and len(GeneratedSet.open(out).completed_indices()) == count:
        return GeneratedSet.open(out)
    shutil.rmtree(out, ignore_errors=True)
    part = GeneratedSet.create(out, method=generated.method, object=generated.object, anomaly=generated.anomaly,
                               settings={**generated.meta.get("settings", {}), "first": count},
                               producer=generated.meta.get("producer"), split=generated.meta.get("split"))
    for sample in generated.samples()[:count]:
        part.write_sample(sample.index, *sample.load(), {k: v for k, v in sample.record.items() if k != "index"})
    part.finalize({"samples": count})
    return part


def _fit(generated: list[GeneratedSet], real_masks: dict[str, list[np.ndarray]],
         segmenter: BorderColourSegmenter | None) -> dict[str, float | None]:
    """How the pairs sit next to the real ones; `segmenter` None: a texture, where no pixel is off the object."""
    images, masks, objects, ratios = [], [], [], []
    for gen in generated:
        loaded = [sample.load() for sample in gen.samples()]
        side = loaded[0][0].shape[0]
        images += [image for image, _, _ in loaded]
        masks += [mask for _, _, mask in loaded]
        objects += [segmenter(image) for image, _, _ in loaded] if segmenter is not None else []
        ratios.append(area_ratio([mask for _, _, mask in loaded],
                                 [resized_mask(mask, side) for mask in real_masks[gen.anomaly]]))
    return {"grid_score": grid_score(images),
            "off_object": off_object_share(masks, objects) if segmenter is not None else None,
            "area_ratio_min": min(ratios), "area_ratio_max": max(ratios)}


def _sheet(path: Path, real: list[tuple[np.ndarray, np.ndarray]], methods: dict[str, GeneratedSet],
           rows: int = 4) -> None:
    """Columns: real anomaly images, then each method's images, each plain and with its mask's outline."""
    side = real[0][0].shape[0]
    columns = {"real": [image for image, _ in real[:rows]],
               "real mask": [mask_overlay(image, mask) for image, mask in real[:rows]]}
    for name, gen in methods.items():
        loaded = [sample.load() for sample in gen.samples()[:rows]]
        columns[name] = [resized_rgb(image, side) for image, _, _ in loaded]
        columns[f"{name} mask"] = [mask_overlay(resized_rgb(image, side), resized_mask(mask, side))
                                   for image, _, mask in loaded]
    side_by_side(columns, path, cell=160, title=path.stem)


def _table(results: dict[str, dict], types: list[str], real_fit: dict[str, float]) -> str:
    """The Markdown table: each method's figures (mean +- std over the seeds), its pixel AP per type, how its pairs
    sit next to the real ones, and its pixel AP minus croppaste's, seed by seed (`paired_difference`: the seeds'
    spread, several points, mostly cancels there, so this is the column that ranks two methods)."""
    reference = results.get("croppaste", {}).get("pixel_ap_by_seed", {})
    headers = [title for _, title in COLUMNS] + [f"{t} AP" for t in types] + [
        "grid score", "mask off object", "mask area / real", "pixel AP - croppaste's, seed by seed"]
    lines = ["| training data | " + " | ".join(headers) + " |", "| --- " * (len(headers) + 1) + "|"]
    for method, result in results.items():
        cells = [f"{percent(result['metrics'][k])} +- {percent(result['std'][k])}" for k, _ in COLUMNS]
        cells += [percent(result["per_type"][t]["pixel_ap"]) for t in types]
        off_object = "n/a (texture)" if result["off_object"] is None else f"{100 * result['off_object']:.1f} %"
        difference = paired_difference(result["pixel_ap_by_seed"], reference) if method != "croppaste" else None
        cells += [f"{result['grid_score']:.3f}", off_object,
                  f"{result['area_ratio_min']:.2f} to {result['area_ratio_max']:.2f}",
                  difference.text() if difference else ""]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    blank = " |" * (len(COLUMNS) + len(types))
    lines.append(f"| real images |{blank} {real_fit['grid_score']:.3f} | | | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--layout")
    parser.add_argument("--object", required=True)
    parser.add_argument("--types", required=True, help="comma-separated anomaly types")
    parser.add_argument("--dual", required=True, help="the dualanodiff GEN of each type: a pattern with {type}")
    parser.add_argument("--num", type=int, default=64)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--base-width", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=LocalizationSettings().learning_rate)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cutpaste", action="store_true")
    parser.add_argument("--methods", default="dualanodiff,croppaste,perlin,mix")
    args = parser.parse_args(argv)
    types = args.types.split(",")
    layout = ["--layout", args.layout] if args.layout else []
    # Each method gets as many pairs per type as the dualanodiff GEN holds (at most --num: QC may give up some).
    sources = {t: GeneratedSet.open(args.dual.format(type=t)) for t in types}
    counts = {t: min(args.num, len(sources[t].completed_indices())) for t in types}
    dual = {t: _first(sources[t], counts[t], args.out / "gen" / f"dualanodiff-{t}") for t in types}
    side = dual[types[0]].samples()[0].load()[0].shape[0]
    baselines = ["croppaste", "perlin"] + (["cutpaste"] if args.cutpaste else [])
    gens: dict[str, list[Path]] = {"dualanodiff": [dual[t].root for t in types]}
    for method in baselines:
        gens[method] = []
        for t in types:
            folder = args.out / "gen" / f"{method}-{t}"
            _cli("baseline", method, "--data", args.data, *layout, "--object", args.object, "--anomaly", t,
                 "--num", counts[t], "--out", folder, "--resolution", side)
            gens[method].append(folder)
    gens["mix"] = [_first(dual[t], counts[t] // 2, args.out / "gen" / f"mix-dual-{t}").root for t in types] + \
        [_first(GeneratedSet.open(args.out / "gen" / f"croppaste-{t}"), counts[t] - counts[t] // 2,
                args.out / "gen" / f"mix-croppaste-{t}").root for t in types]
    methods = [m for m in args.methods.split(",") if m in gens] + (["cutpaste"] if args.cutpaste else [])
    source = load_source(args.data, args.layout)
    normal = [np.asarray(resized_rgb(load_rgb(p), side)) for p in source.normal_train(args.object)[:64]]
    segmenter = BorderColourSegmenter().fit(normal)
    # A texture (the segmenter finds no object in its normal images) has no outside to count.
    if not any(objects.any() and not objects.all() for objects in map(segmenter, normal)):
        segmenter = None
    real_masks, real_pairs = {}, {}
    for t in types:
        samples = source.anomaly_samples(args.object, t)
        real_masks[t] = [load_mask(s.mask_path) for s in samples]
        real_pairs[t] = [(resized_rgb(load_rgb(s.image_path), side), resized_mask(load_mask(s.mask_path), side))
                         for s in samples[:4]]
    results = {}
    for method in methods:
        folder = args.out / "eval" / method
        _cli("evaluate", "localization", "--data", args.data, *layout, "--generated", *gens[method],
             "--out", folder, "--resolution", args.resolution, "--epochs", args.epochs,
             "--base-width", args.base_width, "--learning-rate", args.learning_rate, "--seeds", args.seeds)
        metrics = json.loads((folder / "metrics.json").read_text())
        fit = _fit([GeneratedSet.open(p) for p in gens[method]], real_masks, segmenter)
        results[method] = {"metrics": {k: metrics[k] for k, _ in COLUMNS}, "std": metrics["std"], **fit,
                           "per_type": metrics["per_type"],
                           "pixel_ap_by_seed": {run["seed"]: run["pixel_ap"] for run in metrics["per_seed"]}}
    real_fit = {"grid_score": grid_score([pair[0] for t in types for pair in real_pairs[t]])}
    (args.out / "sheets").mkdir(parents=True, exist_ok=True)
    for t in types:
        _sheet(args.out / "sheets" / f"{t}.png", real_pairs[t],
               {m: GeneratedSet.open(args.out / "gen" / f"{m}-{t}") for m in ["dualanodiff", *baselines]})
    table = _table(results, types, real_fit)
    print(table)
    (args.out / "table.md").write_text(table + "\n")
    (args.out / "results.json").write_text(json.dumps({"args": vars(args) | {"out": str(args.out)}, "pairs": counts,
                                                       "results": results, "real": real_fit}, indent=1))


if __name__ == "__main__":
    main()
