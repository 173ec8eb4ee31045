"""`dualanodiff baseline` (model-free generators) and `dualanodiff evaluate localization|classification|quality`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from dualanodiff.cli.app import app, evaluate_app, require_options, settings_values
from dualanodiff.data import load_source

_DATA = typer.Option(..., "--data", metavar="ROOT", help="The real data set's folder (MVTec AD layout or --layout).")
_LAYOUT = typer.Option(None, "--layout", metavar="FILE",
                       help="A JSON layout file for a data set not in MVTec AD layout.")
_DEVICE = typer.Option(None, "--device", metavar="DEVICE", help="cpu or cuda (default: cuda when available).")
_GENERATED_HELP = ("GEN folders of one object (their meta.json says the anomaly type); repeat the option or list "
                   "several after it.")
# `--generated A B C`: click options take one value each, so the command also accepts the extra arguments.
_MANY = {"allow_extra_args": True}


def _generated(first: list[Path], ctx: typer.Context) -> list[Path]:
    return [*first, *(Path(arg) for arg in ctx.args)]


def localization_settings(params: dict[str, Any]):  # -> LocalizationSettings (imported lazily)
    """The LocalizationSettings of `evaluate localization`'s parameters (the sweep builds its own with this too)."""
    from dualanodiff.evaluate.settings import LocalizationSettings

    return LocalizationSettings(**settings_values(params, LocalizationSettings)).validate()


@app.command()
def baseline(
    method: str = typer.Argument(..., metavar="METHOD", help="croppaste, cutpaste or perlin."),
    data: Path = _DATA,
    layout: Path | None = _LAYOUT,
    object_: str = typer.Option(..., "--object", metavar="OBJ", help="The object."),
    anomaly: str = typer.Option(..., "--anomaly", metavar="TYPE", help="The anomaly type the GEN is made for."),
    num: int = typer.Option(..., "--num", metavar="N", help="How many samples (a re-run adds missing ones)."),
    out: Path = typer.Option(..., "--out", metavar="GEN", help="The GEN folder to write."),
    seed: int = typer.Option(0, "--seed", metavar="S", help="Sample i is drawn from (S, i) alone."),
    resolution: int = typer.Option(256, "--resolution", metavar="PX", help="Side of the square samples."),
    train_count: int | None = typer.Option(None, "--train-count", metavar="K",
                                           help="Training-side anomaly images (default: the first ceil(n/3))."),
) -> None:
    """Make anomaly images with masks without a model, as a GEN folder the evaluations read.

    \b
    croppaste: a training-side real anomaly (masked, rotated/flipped) pasted onto a normal image, on the
               object, with a feathered edge.
    cutpaste:  CutPaste-scar: a thin patch of the normal image, colour-jittered, rotated, pasted back.
    perlin:    DRAEM: a thresholded Perlin-noise mask filled with a texture at a random opacity.
    Only croppaste reads the anomaly images (the training side of the split recorded in meta.json);
    all three record the same split, so the evaluations test them on the same held-out images.
    Resumable: run the same command again to finish or extend (--num) a GEN.

    \b
    Example: dualanodiff baseline croppaste --data mvtec --object bottle --anomaly broken_large --num 500 --out gen/cp
    """
    from dualanodiff.baselines import generate_baseline

    generated = generate_baseline(method, load_source(data, layout), object_, anomaly, num, out, seed=seed,
                                  resolution=resolution, train_count=train_count)
    print(f"{generated.root}: {len(generated.completed_indices())} {method} samples of {object_}/{anomaly} "
          f"at {resolution} px")


def _metric_lines(metrics: dict[str, Any]) -> list[str]:
    from dualanodiff.evaluate.metrics import METRIC_KEYS, percent

    lines = [f"{'':14}" + "".join(f"{key:>14}" for key in METRIC_KEYS)]
    rows = [("overall", metrics), *metrics["per_type"].items()]
    for name, figures in rows:
        lines.append(f"{name:14}" + "".join(percent(figures[key], 14) for key in METRIC_KEYS))
    if metrics["seeds"] > 1:
        lines.append(f"{'std (seeds)':14}" + "".join(percent(metrics["std"][key], 14) for key in METRIC_KEYS))
    return lines


@evaluate_app.command(context_settings=_MANY)
def localization(
    ctx: typer.Context,
    data: Path | None = typer.Option(None, "--data", metavar="ROOT",
                                     help="The real data set's folder (MVTec AD layout or --layout)."),
    generated: list[Path] | None = typer.Option(None, "--generated", metavar="GEN_DIR...", help=_GENERATED_HELP),
    out: Path | None = typer.Option(None, "--out", metavar="DIR", help="Folder for metrics.json and examples.png."),
    layout: Path | None = _LAYOUT,
    object_: str | None = typer.Option(None, "--object", metavar="OBJ",
                                       help="The object (default: the GENs'); a GEN of another object is refused."),
    epochs: int = typer.Option(20, "--epochs", metavar="E", help="Fixed training length (no test-set selection)."),
    resolution: int = typer.Option(256, "--resolution", metavar="PX", help="Working side, a multiple of 32."),
    seeds: int = typer.Option(1, "--seeds", metavar="N", help="Train N networks (seeds 0..N-1): mean and std."),
    batch_size: int = typer.Option(8, "--batch-size", metavar="B"),
    base_width: int = typer.Option(64, "--base-width", metavar="W", help="U-Net base width (DRAEM: 64)."),
    learning_rate: float = typer.Option(1e-4, "--learning-rate", metavar="LR", help="Adam learning rate."),
    device: str | None = _DEVICE,
    config: Path | None = typer.Option(None, "--config", metavar="CALL.json",
                                       help="Run the evaluate_localization call stored in this file."),
) -> None:
    """Train DRAEM's U-Net on generated pairs + normal images; score it on held-out real anomalies.

    \b
    Test set: for each anomaly type of the GENs, the real images on the test side of the split each GEN
    recorded (an image any generator trained on is refused), plus the object's normal test images.
    Pixel AUROC / AP / F1-max over all test pixels; image AUROC / AP / F1-max from the maximum of the
    mean-filtered anomaly map; overall and per anomaly type. Writes DIR/metrics.json (means, std over
    seeds, per-type and per-seed figures) and DIR/examples.png (image | ground truth | anomaly map).

    \b
    Example: dualanodiff evaluate localization --data mvtec --generated gen/cp-* --seeds 3 --out eval/loc-cp
    """
    from dualanodiff.stages import StageCall, read_call, run_call

    if config is not None:
        call = read_call(config, "evaluate_localization")
    else:
        require_options("evaluate localization", data=data, generated=generated, out=out)
        call = StageCall("evaluate_localization", {
            "data": str(data), "layout": str(layout) if layout else None,
            "generated": [str(path) for path in _generated(generated, ctx)], "out": str(out), "object": object_,
            "device": device, "settings": localization_settings(locals()).to_dict()})
    metrics = run_call(call)
    print(f"localization of {metrics['object']} with {', '.join(metrics['methods'])} "
          f"({metrics['seeds']} seed(s), {metrics['epochs']} epochs, {metrics['resolution']} px), percent:")
    for line in _metric_lines(metrics):
        print(line)
    out = Path(call.arguments["out"])
    print(f"wrote {out / 'metrics.json'}")


@evaluate_app.command(context_settings=_MANY)
def classification(
    ctx: typer.Context,
    data: Path = _DATA,
    generated: list[Path] = typer.Option(..., "--generated", metavar="GEN_DIR...", help=_GENERATED_HELP),
    out: Path = typer.Option(..., "--out", metavar="DIR", help="Folder for metrics.json and confusion.png."),
    layout: Path | None = _LAYOUT,
    object_: str | None = typer.Option(None, "--object", metavar="OBJ",
                                       help="The object (default: the GENs'); a GEN of another object is refused."),
    epochs: int = typer.Option(30, "--epochs", metavar="E", help="Fixed training length."),
    resolution: int = typer.Option(224, "--resolution", metavar="PX", help="Input side."),
    batch_size: int = typer.Option(32, "--batch-size", metavar="B"),
    learning_rate: float | None = typer.Option(None, "--learning-rate", metavar="LR",
                                               help="Adam learning rate (default 1e-3 from scratch, 1e-4 "
                                                    "with --backbone-weights)."),
    seed: int = typer.Option(0, "--seed", metavar="S"),
    backbone_weights: Path | None = typer.Option(None, "--backbone-weights", metavar="PATH",
                                                 help="torchvision ResNet-18 ImageNet weights (.pth or "
                                                      ".safetensors); default: train from scratch."),
    device: str | None = _DEVICE,
) -> None:
    """Train a ResNet-18 to tell the anomaly types apart on generated images; test on held-out real ones.

    \b
    Needs GENs of at least 2 anomaly types of one object. Accuracy overall and per type on the real
    images of the recorded test sides; DIR/metrics.json and the confusion matrix DIR/confusion.png.
    From scratch unless --backbone-weights gives a local ImageNet file (nothing is downloaded).

    \b
    Example: dualanodiff evaluate classification --data mvtec --generated gen/cp-* --out eval/cls-cp
    """
    from dualanodiff.evaluate.classification import ClassificationSettings, evaluate_classification
    from dualanodiff.evaluate.metrics import percent

    settings = ClassificationSettings(epochs=epochs, resolution=resolution, batch_size=batch_size,
                                      learning_rate=learning_rate, seed=seed)
    metrics = evaluate_classification(load_source(data, layout), _generated(generated, ctx), out, object=object_,
                                      settings=settings, backbone_weights=backbone_weights, device=device)
    print(f"classification of {metrics['object']} with {', '.join(metrics['methods'])} "
          f"(ResNet-18 {metrics['backbone']}): accuracy {percent(metrics['accuracy'])}%")
    for anomaly, accuracy in metrics["per_type"].items():
        print(f"  {anomaly:14} {percent(accuracy, 5)}%")
    print(f"wrote {out / 'metrics.json'} and {out / 'confusion.png'}")


@evaluate_app.command()
def quality(
    gen: Path = typer.Argument(..., metavar="GEN", help="The GEN folder to measure."),
    data: Path = _DATA,
    out: Path = typer.Option(..., "--out", metavar="DIR", help="Folder for metrics.json."),
    layout: Path | None = _LAYOUT,
    object_: str | None = typer.Option(None, "--object", metavar="OBJ", help="Checked against the GEN's."),
    anomaly: str | None = typer.Option(None, "--anomaly", metavar="TYPE", help="Checked against the GEN's."),
    inception_weights: Path | None = typer.Option(
        None, "--inception-weights", metavar="P",
        help="torchvision Inception-v3 ImageNet weights (default: TORCH_HUB/checkpoints/"
             "inception_v3_google-0cc3c7bd.pth)."),
    vgg_weights: Path | None = typer.Option(
        None, "--vgg-weights", metavar="P",
        help="torchvision VGG16 ImageNet weights (default: TORCH_HUB/checkpoints/vgg16-397923af.pth)."),
    lpips_weights: Path | None = typer.Option(
        None, "--lpips-weights", metavar="P",
        help="LPIPS v0.1 VGG linear layers, the lpips package's weights/v0.1/vgg.pth (default: "
             "TORCH_HUB/checkpoints/lpips_vgg_v0.1.pth, or an installed lpips package's)."),
    batch_size: int = typer.Option(16, "--batch-size", metavar="B"),
    device: str | None = _DEVICE,
) -> None:
    """Measure generation quality: Inception Score, IC-LPIPS and KID of one GEN folder.

    \b
    IS over the generated images (10 splits, fewer under 1000 images); IC-LPIPS: each generated image
    joins the nearest training-side real anomaly by LPIPS (VGG, 256 px), then the mean pairwise LPIPS of
    at most 50 per cluster, averaged; KID between Inception features of the generated images and all
    real anomaly images of the type. Weights are never downloaded: give them or put them in the torch
    hub cache (the error says which file is missing and where it goes).

    \b
    Example: dualanodiff evaluate quality gen/cp --data mvtec --out eval/quality-cp
    """
    from dualanodiff.evaluate.quality import evaluate_quality, pretrained_quality_networks

    networks = pretrained_quality_networks(inception_weights, vgg_weights, lpips_weights)
    metrics = evaluate_quality(load_source(data, layout), gen, out, networks, object=object_, anomaly=anomaly,
                               batch_size=batch_size, device=device)
    print(f"quality of {metrics['method']} {metrics['object']}/{metrics['anomaly']} "
          f"({metrics['num_generated']} images): IS {metrics['inception_score']:.3f}, "
          f"IC-LPIPS {metrics['ic_lpips']:.3f}, KID {metrics['kid']:.4f} ± {metrics['kid_std']:.4f}")
    print(f"wrote {out / 'metrics.json'}")
