"""`dualanodiff data` (check a data set) and `dualanodiff synth` (write the built-in synthetic data set)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from dualanodiff.cli.app import app
from dualanodiff.data import load_source, split_rule_text, write_synthetic
from dualanodiff.errors import DataError


def _summary_lines(description: dict[str, Any]) -> list[str]:
    """The counts of `DataSource.describe()` as lines; a type that cannot be split says so as a problem."""
    lines = [f"data: {description['root']} ({description['layout']})"]
    for name, entry in description["objects"].items():
        lines.append(f"object {name}: {entry['normal_train']} normal train, {entry['normal_test']} normal test, "
                     f"{len(entry['anomalies'])} anomaly types")
        for anomaly, counts in entry["anomalies"].items():
            split = (f"split {counts['train']} train / {counts['test']} test" if "train" in counts
                     else "no split")
            lines.append(f"  {anomaly}: {counts['images']} images, {split}")
    return lines


@app.command("data")
def data_command(
    data_root: Path = typer.Argument(..., help="The data set's folder."),
    layout: Path | None = typer.Option(None, "--layout", metavar="FILE",
                                       help="A JSON layout file for a data set not in MVTec AD layout "
                                            "(default: DATA_ROOT/dualanodiff-layout.json if present)."),
    object_: str | None = typer.Option(None, "--object", metavar="OBJ", help="Check this object only."),
    train_count: int | None = typer.Option(None, "--train-count", metavar="K",
                                           help="Split sizes with the first K images training "
                                                "(default: the first ceil(n/3))."),
) -> None:
    """Check a data set: list its objects, anomaly types, image counts and split sizes, then every problem.

    \b
    Decodes every image and mask and reports, one line each naming the file: images without a mask,
    masks of the wrong size or empty, corrupt, truncated or oversized images, unsupported files, empty
    folders, and anomaly types too small to split. Exits with status 2 when it finds any problem, so it
    can guard a script.

    \b
    Example: dualanodiff data mvtec_ad --object bottle
    Example: dualanodiff data mtd-sample --layout examples/layouts/mtd.json --train-count 5
    """
    source = load_source(data_root, layout)
    description = source.describe(object_, train_count=train_count)
    for line in _summary_lines(description):
        print(line)
    print(f"split rule: {split_rule_text(train_count)}")
    problems = source.problems(object_) + [
        counts["split_problem"] for entry in description["objects"].values()
        for counts in entry["anomalies"].values() if "split_problem" in counts]
    for problem in problems:
        print(f"problem: {problem}")
    if problems:
        raise DataError(f"{data_root}: {len(problems)} problem(s) found (listed above)")
    print("no problems found")


@app.command("synth")
def synth_command(
    out: Path = typer.Argument(..., help="The folder to write the data set into."),
    seed: int = typer.Option(0, "--seed", metavar="S", help="Random seed; the same seed gives the same files."),
    size: int = typer.Option(256, "--size", metavar="PX", help="Image side in pixels."),
    backgrounds: str = typer.Option("plain", "--backgrounds",
                                    help="plain, or varied: each washer on a background of its own colour."),
) -> None:
    """Write the built-in synthetic data set (no download) in MVTec AD layout.

    \b
    Two objects: fabric (anomaly types hole and stain) and washer (crack and rust), each with 60 normal
    training images, 8 normal test images and 12 images with exact masks per anomaly type. The same
    seed and size give byte-identical PNGs; a folder already holding them is left as it is.

    \b
    Example: dualanodiff synth synthetic-data --seed 0 --size 256
    """
    write_synthetic(out, seed=seed, size=size, backgrounds=backgrounds)
    print(f"synthetic data set, seed {seed}, {size}x{size} pixels:")
    for line in _summary_lines(load_source(out).describe()):
        print(line)
