"""Hostile input through the real command line: every case ends in exit status 2 and one line on stderr that names
the file or option and the problem, never a traceback, and nothing already written changes.

Each case is (name, a function of the prepared world returning the argv, what the one line must say). The world
holds a briefly trained micro run, a GEN made from it, and damaged copies of both.
"""

import itertools
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from dualanodiff.cli import main
from dualanodiff.io import save_image

_FRESH = itertools.count()


@dataclass(frozen=True)
class World:
    data: Path
    base: Path
    run: Path
    gen: Path
    tmp: Path

    def train(self, *extra: str, out: Path | None = None) -> list[str]:
        out = out or self.tmp / f"new-run-{next(_FRESH)}"  # every case its own, as failed runs stay behind
        return ["train", "--data", str(self.data), "--object", "washer", "--anomaly", "rust", "--out", str(out),
                "--base-model", str(self.base), "--resolution", "32",
                "--steps", "1", "--batch-size", "2", *extra]

    def generate(self, *extra: str, run: Path | None = None, out: str = "new-gen") -> list[str]:
        return ["generate", str(run or self.run), "--out", str(self.tmp / out), "--num", "2", "--steps", "1",
                "--device", "cpu", "--qc", "off", *extra]

    def localization(self, gen: Path, *extra: str) -> list[str]:
        return ["evaluate", "localization", "--data", str(self.data), "--generated", str(gen),
                "--out", str(self.tmp / "eval"), "--epochs", "1", "--resolution", "32", "--base-width", "2", *extra]

    def run_copy(self, name: str, change=None) -> Path:
        """A copy of the trained run; `change(config dict or path)` damages it."""
        copy = self.tmp / name
        if not copy.exists():
            shutil.copytree(self.run, copy)
            if change is not None:
                change(copy)
        return copy

    def gen_copy(self, name: str, change) -> Path:
        copy = self.tmp / name
        if not copy.exists():
            shutil.copytree(self.gen, copy)
            change(copy)
        return copy


def _config(change):
    def edit(run: Path) -> None:
        path = run / "config.json"
        path.write_text(json.dumps(change(json.loads(path.read_text()))))
    return edit


def _weights(change):
    def edit(run: Path) -> None:
        path = run / "weights.safetensors"
        save_file(change(load_file(path)), str(path))
    return edit


def _first_weight_reshaped(weights):
    name = sorted(weights)[0]
    return {**weights, name: weights[name].flatten()[:3].clone()}


def _nan_weights(weights):
    return {name: tensor * float("nan") for name, tensor in weights.items()}


def _truncated(gen: Path) -> None:
    path = gen / "image" / "0001.png"
    path.write_bytes(path.read_bytes()[:60])


def _mask_of_another_size(gen: Path) -> None:
    save_image(gen / "mask" / "0000.png", np.zeros((8, 8), np.uint8))


def _bad_layout(tmp: Path, masks: str = "{stem}.png", normal: str = "train/good") -> Path:
    path = tmp / f"layout-{abs(hash((masks, normal)))}.json"
    path.write_text(json.dumps({"objects": {"washer": {"anomalies": {"rust": "washer/test/rust"}, "images": "*.png",
                                                       "masks": masks, "normal": normal}}}))
    return path


CASES = [
    # train: settings
    ("train --steps 0", lambda w: w.train("--steps", "0"), "--steps must be at least 1, got 0"),
    ("train --lr nan", lambda w: w.train("--lr", "nan"), "--lr must be a finite number"),
    ("train --lr -1", lambda w: w.train("--lr", "-1"), "--lr must be above 0"),
    ("train --ema-decay 2", lambda w: w.train("--ema-decay", "2"), "--ema-decay must be at most"),
    ("train --preset huge", lambda w: w.train("--preset", "huge"), "--preset must be one of sd15, tiny"),
    ("train --rank -4", lambda w: w.train("--rank", "-4"), "--rank must be at least 1"),
    ("train --mixed-precision fp8", lambda w: w.train("--mixed-precision", "fp8"), "--mixed-precision must be"),
    ("train --bcm-form x", lambda w: w.train("--bcm-form", "x"), "--bcm-form must be one of additive, gated"),
    ("train --saim-init x", lambda w: w.train("--saim-init", "x"), "--saim-init must be one of zero, default"),
    ("train --resolution 30", lambda w: w.train("--resolution", "30"), "--resolution 30: this base model needs"),
    ("train --train-count 99", lambda w: w.train("--train-count", "99"), "train count 99 does not fit"),
    ("train without --data", lambda w: ["train", "--object", "o", "--anomaly", "a", "--out", str(w.tmp / "x")],
     "missing option"),
    ("train unknown object", lambda w: w.train("--object", "teapot"), "unknown object 'teapot'"),
    ("train unknown anomaly", lambda w: w.train("--anomaly", "dent"), "unknown anomaly type 'dent'"),
    ("train --out under a file", lambda w: w.train(out=w.tmp / "a-file" / "run"), "a-file/run"),
    ("train --base-model missing", lambda w: w.train("--base-model", str(w.tmp / "nowhere")),
     "nowhere: no such folder"),
    ("train --object-segmenter os:system", lambda w: w.train("--bcm", "--object-segmenter", "os:system"),
     r"object segmenter 'os:system': system\(\) failed"),
    ("train on an existing run", lambda w: w.train(out=w.run), "pass --resume"),
    ("train --config missing", lambda w: ["train", "--config", str(w.tmp / "no.json")], "file not found"),
    ("train --config not a call", lambda w: ["train", "--config", str(w.run / "split.json")], "holds no train call"),
    ("train --layout with ..", lambda w: [*w.train(), "--layout", str(_bad_layout(w.tmp, normal="../../x"))],
     "leads out of the data root"),
    ("train --layout format spec", lambda w: [*w.train(), "--layout", str(_bad_layout(w.tmp, "{stem:x}.png"))],
     "take no format spec"),
    ("train --canvas poster", lambda w: w.train("--canvas", "poster"), "--canvas must be one of image, window"),
    ("train --working-resolution on the image canvas", lambda w: w.train("--canvas", "image",
                                                                          "--working-resolution", "64"),
     "--working-resolution needs --canvas window"),
    ("train --working-resolution below --resolution", lambda w: w.train("--canvas", "window",
                                                                         "--working-resolution", "16"),
     "--working-resolution 16 is below --resolution 32"),
    ("train --window-margin -1", lambda w: w.train("--window-margin", "-1"), "--window-margin must be at least 0"),
    ("train --background-lora x", lambda w: w.train("--bcm", "--background-lora", "x"),
     "--background-lora must be one of global, frozen"),
    # generate: settings
    ("generate --guidance nan", lambda w: w.generate("--guidance", "nan"), "--guidance must be a finite number"),
    ("generate --guidance inf", lambda w: w.generate("--guidance", "inf"), "--guidance must be a finite number"),
    ("generate --num 0", lambda w: [*w.generate()[:5], "0", *w.generate()[6:]], "--num must be at least 1"),
    ("generate --num -3", lambda w: [*w.generate()[:5], "-3", *w.generate()[6:]], "--num must be at least 1"),
    ("generate --steps 0", lambda w: w.generate("--steps", "0"), "--steps must be at least 1"),
    ("generate --batch-size 0", lambda w: w.generate("--batch-size", "0"), "--batch-size must be at least 1"),
    ("generate --device cuda:7", lambda w: w.generate("--device", "cuda:7"), "--device cuda:7: "),
    ("generate --device banana", lambda w: w.generate("--device", "banana"), "--device banana: not a device"),
    ("generate --mask-method os:system", lambda w: w.generate("--mask-method", "os:system"),
     r"mask method 'os:system': system\(\) failed"),
    ("generate --mask-method magic", lambda w: w.generate("--mask-method", "magic"), "unknown mask method"),
    ("generate --scheduler euler", lambda w: w.generate("--scheduler", "euler"), "--scheduler must be one of"),
    ("generate --export-mvtec under a file", lambda w: w.generate("--export-mvtec", str(w.tmp / "a-file" / "x")),
     "a-file/x"),
    ("generate --qc maybe", lambda w: w.generate("--qc", "maybe"), "--qc must be one of off, on"),
    ("generate --qc-max-off-object 2", lambda w: w.generate("--qc", "on", "--qc-max-off-object", "2"),
     "--qc-max-off-object must be at most 1"),
    ("generate --bcm-noise x", lambda w: w.generate("--bcm-noise", "x"), "--bcm-noise must be one of per_step, fixed"),
    ("generate --bcm-unconditional x", lambda w: w.generate("--bcm-unconditional", "x"),
     "--bcm-unconditional must be one of grey, black"),
    ("generate without --num", lambda w: ["generate", str(w.run), "--out", str(w.tmp / "g")], "missing option"),
    # generate: damaged runs
    ("generate from a data folder", lambda w: w.generate(run=w.data), "not a training run folder"),
    ("generate config [1,2]", lambda w: w.generate(run=w.run_copy("list", _config(lambda c: [1, 2]))),
     "not a run's config"),
    ("generate config {}", lambda w: w.generate(run=w.run_copy("empty", _config(lambda c: {}))),
     "not a run's config"),
    ("generate config other format", lambda w: w.generate(run=w.run_copy("fmt", _config(
        lambda c: {**c, "format": "other/9"}))), "not a run's config"),
    ("generate config resolution big", lambda w: w.generate(run=w.run_copy("big", _config(
        lambda c: {**c, "resolution": "big"}))), "resolution must be an integer"),
    ("generate config rank -4", lambda w: w.generate(run=w.run_copy("rank", _config(
        lambda c: {**c, "model": {**c["model"], "rank": -4}}))), "--rank must be at least 1"),
    ("generate config saim yes", lambda w: w.generate(run=w.run_copy("saim", _config(
        lambda c: {**c, "model": {**c["model"], "saim": "yes"}}))), "saim must be true or false"),
    ("generate config unknown preset", lambda w: w.generate(run=w.run_copy("preset", _config(
        lambda c: {**c, "preset": "huge"}))), "--preset must be one of"),
    ("generate config without model", lambda w: w.generate(run=w.run_copy("nomodel", _config(
        lambda c: {k: v for k, v in c.items() if k != "model"}))), "has no model"),
    ("generate unfinished run", lambda w: w.generate(run=w.run_copy("unfinished", lambda r: (
        r / "weights.safetensors").unlink())), "training has not finished"),
    ("generate wrong-shape weights", lambda w: w.generate(run=w.run_copy("shape", _weights(_first_weight_reshaped))),
     r"weights\.safetensors: adapter weight .* has shape"),
    ("generate damaged weights", lambda w: w.generate(run=w.run_copy("damaged", lambda r: (
        r / "weights.safetensors").write_bytes(b"\x00" * 64))), r"weights\.safetensors: not a readable"),
    ("generate NaN weights", lambda w: w.generate(run=w.run_copy("nan", _weights(_nan_weights))),
     "produced non-finite values"),
    ("generate into another run's GEN", lambda w: w.generate(run=w.run_copy("other", _weights(
        lambda t: {n: v + 1 for n, v in t.items()})), out=str(w.gen.relative_to(w.tmp))), "another producer"),
    # evaluate and report
    ("localization --resolution 48", lambda w: w.localization(w.gen, "--resolution", "48"), "multiple of 32"),
    ("localization --seeds 0", lambda w: w.localization(w.gen, "--seeds", "0"), "--seeds must be at least 1"),
    ("localization truncated PNG", lambda w: w.localization(w.gen_copy("trunc", _truncated)), "truncated"),
    ("localization empty PNG", lambda w: w.localization(w.gen_copy("zero", lambda g: (
        g / "fg" / "0000.png").write_bytes(b""))), "not a readable image"),
    ("localization missing PNG", lambda w: w.localization(w.gen_copy("gone", lambda g: (
        g / "mask" / "0001.png").unlink())), "file not found"),
    ("localization mask of another size", lambda w: w.localization(w.gen_copy("size", _mask_of_another_size)),
     "is 8x8 pixels but its image"),
    ("localization of a non-GEN", lambda w: w.localization(w.run), "not a generated set"),
    ("synth --seed -1", lambda w: ["synth", str(w.tmp / "synth"), "--seed", "-1"], "--seed -1: must be at least 0"),
    ("demo --num 0 (before any training)", lambda w: ["demo", "--out", str(w.tmp / "demo"), "--num", "0"],
     "--num must be at least 1"),
    ("report of an empty folder", lambda w: ["report", str(w.tmp / "empty-dir")], "holds no run"),
    ("data with a layout out of the root", lambda w: ["data", str(w.data), "--layout",
                                                       str(_bad_layout(w.tmp, normal="../elsewhere"))],
     "leads out of the data root"),
]


@pytest.fixture(scope="module")
def world(synthetic_root, micro_base_dir, tmp_path_factory) -> World:
    tmp = tmp_path_factory.mktemp("hostile")
    (tmp / "a-file").write_text("a file, not a folder")
    (tmp / "empty-dir").mkdir()
    run, gen = tmp / "run", tmp / "gen"
    for argv in (["train", "--data", str(synthetic_root), "--object", "washer", "--anomaly", "rust", "--out",
                  str(run), "--base-model", str(micro_base_dir), "--resolution", "32", "--steps", "1",
                  "--batch-size", "2", "--rank", "4"],
                 ["generate", str(run), "--out", str(gen), "--num", "2", "--steps", "1", "--device", "cpu",
                  "--qc", "off"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0
    return World(synthetic_root, micro_base_dir, run, gen, tmp)


def _snapshot(*folders: Path) -> dict[str, bytes]:
    return {str(path): path.read_bytes() for folder in folders for path in sorted(folder.rglob("*"))
            if path.is_file() and not path.name.startswith(".")}


@pytest.mark.parametrize(("argv", "message"), [(argv, message) for _, argv, message in CASES],
                         ids=[name for name, _, _ in CASES])
def test_hostile_input_is_one_line_and_status_2(world, argv, message, capsys, one_torch_thread):
    before = _snapshot(world.run, world.gen, world.data)
    with pytest.raises(SystemExit) as exit_:
        main(argv(world))
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2, err
    errors = [line for line in err if line.startswith("error: ")]  # (progress bars go to stderr too)
    assert len(errors) == 1 and not any("Traceback" in line for line in err), err
    assert re.search(message, errors[0]), errors[0]
    assert _snapshot(world.run, world.gen, world.data) == before  # nothing already written changed
