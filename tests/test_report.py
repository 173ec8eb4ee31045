import csv
import json
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

from dualanodiff.cli import main
from dualanodiff.errors import UserError
from dualanodiff.generation.generated_set import GeneratedSet
from dualanodiff.io import save_image, write_json
from dualanodiff.report import find_outputs, write_report
from dualanodiff.training.run import Run

LOCALIZATION_KEYS = ("pixel_auroc", "pixel_ap", "pixel_f1_max", "image_auroc", "image_ap", "image_f1_max")
RESULTS_COLUMNS = ("object", "anomaly", "status", *LOCALIZATION_KEYS, "samples", "empty_masks", "mean_mask_area",
                   "mean_branch_agreement", "mean_background_preservation", "seconds", "error")
MARKDOWN_ONLY = "written only into results.md"


class PageParser(HTMLParser):
    """Collects links, element ids, attribute names, the text of best (bold) cells, of headings and captions,
    and all visible text."""

    TITLES = ("h2", "h3", "h4", "caption")

    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.attributes: set[str] = set()
        self.best: list[str] = []
        self.titles: list[str] = []
        self.text: list[str] = []
        self.tags: list[str] = []
        self._in_best = self._in_title = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append(tag)
        self.attributes |= set(attributes)
        self.links.extend(attributes[key] for key in ("src", "href") if attributes.get(key))
        if "id" in attributes:
            self.ids.add(attributes["id"])
        if tag == "td" and "best" in (attributes.get("class") or "").split():
            self._in_best = True
            self.best.append("")
        if tag in self.TITLES:
            self._in_title = True
            self.titles.append("")

    def handle_endtag(self, tag):
        if tag == "td":
            self._in_best = False
        if tag in self.TITLES:
            self._in_title = False

    def handle_data(self, data):
        self.text.append(data)
        if self._in_best:
            self.best[-1] += data
        if self._in_title:
            self.titles[-1] += data


def parse(page: Path) -> PageParser:
    parser = PageParser()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def assert_links_resolve(page: Path, parser: PageParser) -> None:
    assert parser.links
    for link in parser.links:
        assert "://" not in link and not link.startswith("//"), f"network link {link}"
        if link.startswith("#"):
            assert link[1:] in parser.ids, f"dangling anchor {link}"
        else:
            assert (page.parent / unquote(link)).is_file(), f"missing file {link}"


def localization(object_name: str, method: str, values: dict[str, float], **extra) -> dict:
    return {"kind": "localization", "object": object_name, "methods": [method], **values, **extra}


def make_outputs(root: Path) -> dict:
    """A demo-like tree: a RUN, a GEN, evaluations of three kinds, a sweep table, and an unknown folder."""
    rng = np.random.default_rng(0)
    run = root / "run"
    write_json(run / "config.json", {"preset": "tiny", "object": "bottle", "anomaly": "broken_large",
                                     "steps": 40, "lora": {"rank": 4}, "note": "<script>alert(1)</script>"})
    write_json(run / "split.json", {"train": ["000.png", "001.png"],
                                    "test": ["002.png", "003.png", "004.png"]})
    with (run / "loss.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["step", "loss"])
        writer.writerows((step, 1.0 / (step + 1)) for step in range(40))

    generated = GeneratedSet.create(root / "generated", method="dualanodiff", object="bottle",
                                    anomaly="broken_large", settings={"steps": 2, "guidance": 2.5})
    mask_areas = []
    for index in range(3):
        image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
        mask = np.zeros((32, 32), bool)
        mask[2:4 + 3 * index, 5:12] = True
        mask_areas.append(float(mask.mean()))
        record = {"seed": 100 + index, "mask_area": mask_areas[-1], "branch_agreement": 0.1 * index}
        generated.write_sample(index, image, image * mask[..., None], mask, record)

    ours = dict(zip(LOCALIZATION_KEYS, (0.973, 0.812, 0.755, 0.990, 0.947, 0.930), strict=True))
    theirs = dict(zip(LOCALIZATION_KEYS, (0.951, 0.700, 0.650, 0.980, 0.993, 0.920), strict=True))
    write_json(root / "eval" / "ours" / "metrics.json", localization(
        "bottle", "dualanodiff", ours, std={"pixel_auroc": 0.004}, seeds=3,
        per_type={"broken_large": {**ours, "pixel_ap": 0.61}, "contamination": ours}))
    save_image(root / "eval" / "ours" / "examples.png", np.zeros((8, 24, 3), np.uint8))
    write_json(root / "eval" / "croppaste" / "metrics.json", localization(  # one seed: its std of 0 is not shown
        "bottle", "croppaste", theirs, std={"pixel_auroc": 0.0}, seeds=1,
        per_type={"broken_large": {**theirs, "pixel_ap": 0.66}}))
    write_json(root / "eval" / "cls" / "metrics.json", {
        "kind": "classification", "object": "bottle", "methods": ["dualanodiff"], "accuracy": 0.6789,
        "backbone_weights": "scratch", "classes": ["broken_large", "contamination"],
        "per_type": {"broken_large": 0.7, "contamination": {"accuracy": 0.625}},
        "confusion_matrix": [[7, 3], [3, 5]]})
    for method, kid in (("dualanodiff", 0.0123), ("perlin", 0.0456)):
        write_json(root / "eval" / f"quality-{method}" / "metrics.json", {
            "kind": "quality", "object": "bottle", "anomaly": "broken_large", "method": method,
            "inception_score": 1.93 if method == "perlin" else 1.51, "ic_lpips": 0.38, "kid": kid,
            "kid_std": 0.001, "std": {"kid": 0.001}})
    write_results_csv(root / "sweep", [
        {"object": "bottle", "anomaly": "(all)", "status": "done", "pixel_auroc": 0.9731, "samples": 6,
         "empty_masks": 0, "mean_mask_area": 0.0123, "seconds": 125},
        {"object": "bottle", "anomaly": "broken_large", "status": "done", "pixel_auroc": 0.95, "samples": 3,
         "mean_branch_agreement": 0.8765, "seconds": 3725},
        {"object": "bottle", "anomaly": "contamination", "status": "failed", "error": "RuntimeError: out of memory"},
        {"object": "mean", "anomaly": "(all)", "status": "1 of 1 objects evaluated", "pixel_auroc": 0.9731}])
    (root / "sweep" / "results.md").write_text(f"# Sweep\n\n| object | pixel AUROC |\n| --- | ---: |\n"
                                               f"| {MARKDOWN_ONLY} | **12.3** |\n")
    (root / "unrelated").mkdir()
    (root / "unrelated" / "notes.txt").write_text("not an output")
    return {"mask_areas": mask_areas}


def write_results_csv(folder: Path, rows: list[dict]) -> Path:
    """A sweep's results.csv as the sweep writes it: fractions, an empty cell where a figure is missing."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "results.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, RESULTS_COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return folder / "results.csv"


def run_cli(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_:
        main(args)
    return exit_.value.code


def test_report_of_a_folder_tree(tmp_path, capsys):
    root = tmp_path / "demo"
    facts = make_outputs(root)
    gen_files_before = sorted(p.relative_to(root) for p in (root / "generated").rglob("*"))

    assert run_cli(["report", str(root)]) == 0
    assert "1 run(s), 1 generated set(s), 5 evaluation(s), 1 results table(s)" in capsys.readouterr().out
    page = root / "report.html"
    parser = parse(page)
    assert_links_resolve(page, parser)
    text = " ".join(parser.text)
    html_source = page.read_text()

    # Localization: methods side by side, percent with one decimal, mean ± std, best of each column in bold.
    for figure in ("97.3 ± 0.4", "95.1", "81.2", "70.0", "99.3", "61.0", "66.0"):
        assert figure in text
    assert {"97.3 ± 0.4", "81.2", "75.5", "99.0", "99.3", "93.0"} <= set(parser.best)
    assert not {"95.1", "70.0", "65.0", "98.0", "94.7", "92.0"} & set(parser.best)
    assert "66.0" in parser.best and "61.0" not in parser.best  # per type, the other method wins pixel AP
    assert "seeds=3" in text and "95.1 ±" not in text
    assert "eval/ours/examples.png" in parser.links
    # Classification: accuracy and per-type figures, the backbone recorded, the confusion matrix drawn.
    assert "67.9" in text and "62.5" in text and "backbone_weights=scratch" in text
    assert any("confusion" in link and link.endswith(".png") for link in parser.links)
    # Quality: the lower KID and the higher IS are the best.
    assert "0.0123 ± 0.0010" in parser.best and "0.0456 ± 0.0010" not in parser.best
    assert "kid_std" not in text
    assert "1.93" in parser.best and "1.51" not in parser.best
    # The RUN: settings, split, a loss curve drawn from loss.csv; the GEN: contact sheet, per-sample figures.
    assert "lora.rank" in text and "2 train, 3 test" in text
    assert any(link.endswith("_loss.png") for link in parser.links)
    assert f"{100 * np.mean(facts['mask_areas']):.1f}" in parser.text and "10.0" in parser.text  # means, percent
    assert "branch_agreement (percent)" in text and "101" in text
    # The sweep's table comes from results.csv, in percent; its results.md is linked, never read.
    assert "Results: sweep" in text and "97.3" in parser.text and "0.9731" not in text
    assert MARKDOWN_ONLY not in text and "sweep/results.md" in parser.links
    # Text is escaped, nothing runs, nothing is written into the input folders.
    assert "script" not in parser.tags and "&lt;script&gt;" in html_source
    assert sorted(p.relative_to(root) for p in (root / "generated").rglob("*")) == gen_files_before
    assert not (root / "run" / "loss.png").exists()


def test_report_written_elsewhere_links_back(tmp_path):
    make_outputs(tmp_path / "demo")
    result = write_report(tmp_path / "demo" / "eval", tmp_path / "elsewhere" / "page.html")
    assert result.path == tmp_path / "elsewhere" / "page.html"
    assert result.evaluations == 5 and result.runs == 0
    assert_links_resolve(result.path, parse(result.path))


def test_report_of_a_single_gen_folder(tmp_path):
    make_outputs(tmp_path)
    result = write_report(tmp_path / "generated")
    assert result.generated == 1
    parser = parse(result.path)
    assert_links_resolve(result.path, parser)
    assert "Generated: generated" in " ".join(parser.text)


def test_a_gen_s_qc_counts_and_rejects_are_shown(tmp_path):
    make_outputs(tmp_path)
    generated = GeneratedSet.open(tmp_path / "generated")
    generated.finalize({"samples": 3, "qc": {"tried": 7, "accepted": 3, "given_up": 1,
                                             "rejected": {"empty_mask": 3, "mask_area": 1}}})
    save_image(tmp_path / "generated" / "rejected.png", np.zeros((8, 8, 3), np.uint8))
    result = write_report(tmp_path / "generated")
    parser = parse(result.path)
    assert_links_resolve(result.path, parser)
    text = " ".join(parser.text)
    assert "Sample QC" in text and "rejected: empty mask" in text and "samples given up" in text
    assert "the samples QC rejected" in text


def test_unreadable_files_are_listed_not_fatal(tmp_path, capsys):
    make_outputs(tmp_path)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metrics.json").write_text("{ not json")
    (tmp_path / "run" / "loss.csv").write_text("epoch,value\n1,2\n")
    assert run_cli(["report", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "broken/metrics.json: not readable JSON" in err and "loss.csv: not a loss log" in err
    assert_links_resolve(tmp_path / "report.html", parse(tmp_path / "report.html"))


def test_nothing_recognisable_is_a_user_error(tmp_path, capsys):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "meta.json").write_text(json.dumps({"format": "something-else"}))
    assert run_cli(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and str(tmp_path) in err
    assert not (tmp_path / "report.html").exists()
    assert run_cli(["report", str(tmp_path / "missing")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_walk_stops_at_the_depth_limit_and_inside_recognised_folders(tmp_path):
    deep = tmp_path / "a" / "b" / "c" / "d"
    write_json(deep / "metrics.json", {"kind": "quality", "object": "x", "kid": 0.1})
    write_json(tmp_path / "a" / "metrics.json", {"kind": "quality", "object": "x", "kid": 0.2})
    write_json(tmp_path / "a" / "inner" / "metrics.json", {"kind": "quality", "object": "x", "kid": 0.3})
    assert [e.folder for e in find_outputs(tmp_path).evaluations] == [tmp_path / "a"]
    assert find_outputs(tmp_path / "a" / "b").evaluations[0].folder == deep
    with pytest.raises(UserError, match=r"searched to depth 1\)$"):
        write_report(tmp_path / "a" / "b", max_depth=1)


def test_sweep_table_comes_from_results_csv_in_percent(tmp_path, monkeypatch):
    sweep = tmp_path / "sweep"
    write_results_csv(sweep, [
        {"object": "washer", "anomaly": "(all)", "status": "done", **dict.fromkeys(LOCALIZATION_KEYS, 0.9731),
         "samples": 4, "empty_masks": 1, "mean_mask_area": 0.0456, "mean_branch_agreement": 0.5,
         "mean_background_preservation": 0.987, "seconds": 65},
        {"object": "washer", "anomaly": "crack", "status": "done", "pixel_auroc": 0.8004, "samples": 2,
         "mean_mask_area": 0.0123, "seconds": 7300},
        {"object": "mean", "anomaly": "(all)", "status": "1 of 1 objects evaluated",
         **dict.fromkeys(LOCALIZATION_KEYS, 0.9731)}])
    (sweep / "results.md").write_text(f"| object |\n| --- |\n| {MARKDOWN_ONLY} |\n")
    opened = []
    for name in ("io.open", "builtins.open"):
        monkeypatch.setattr(name, lambda file, *args, _open=open, **kwargs: opened.append(str(file))
                            or _open(file, *args, **kwargs))
    result = write_report(sweep)
    monkeypatch.undo()

    assert result.tables == 1 and not result.warnings
    assert str(sweep / "results.csv") in opened and not any(name.endswith("results.md") for name in opened)
    parser = parse(result.path)
    assert_links_resolve(result.path, parser)
    assert parser.text.count("97.3") == 12  # six metrics of the object, six of the mean
    assert {"4.6", "50.0", "98.7", "80.0", "1.2", "1 min 05 s", "2 h 01 min"} <= set(parser.text)
    text = " ".join(parser.text)
    assert not any(fraction in text for fraction in ("0.9731", "0.0456", "0.8004", "0.987"))
    assert MARKDOWN_ONLY not in text
    assert "<td><b>mean</b></td>" in result.path.read_text()
    sweep_titles = [t for t in parser.titles if t not in ("Results: sweep",)]
    assert "Localization and detection per object (percent)" in sweep_titles
    assert "Per anomaly type (percent)" in sweep_titles
    assert all("percent" in t for t in sweep_titles)


def test_a_results_md_alone_is_not_a_results_table(tmp_path):
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "results.md").write_text(f"| object | AUROC |\n| --- | --- |\n| {MARKDOWN_ONLY} | 1 |\n")
    with pytest.raises(UserError, match=r"results\.md: not shown; the report reads a sweep's results\.csv"):
        write_report(tmp_path)
    write_json(tmp_path / "quality" / "metrics.json", {"kind": "quality", "object": "x", "kid": 0.1})
    result = write_report(tmp_path)
    assert result.tables == 0 and any("results.md: not shown" in warning for warning in result.warnings)
    assert MARKDOWN_ONLY not in result.path.read_text()


def test_a_csv_that_is_not_a_sweep_table_is_a_warning(tmp_path):
    (tmp_path / "results.csv").write_text("a,b\n1,2\n")
    result = write_report(tmp_path)
    assert result.warnings == [f"{tmp_path / 'results.csv'}: results table not readable "
                               "(not a sweep's results table: no column object, anomaly)"]
    assert_links_resolve(result.path, parse(result.path))


def test_names_from_disk_stay_escaped(tmp_path):
    evil = '<img src=x onerror="alert(1)">&amp;'
    sweep = tmp_path / "sweep <b>&\"'"
    write_results_csv(sweep, [
        {"object": evil, "anomaly": "(all)", "status": "failed", "error": "<script>alert(2)</script>"},
        {"object": evil, "anomaly": "<i>crack</i>", "status": "done", "pixel_auroc": 0.5},
        {"object": "mean", "anomaly": "(all)", "status": "<u>0 of 1</u>"}])
    generated = GeneratedSet.create(tmp_path / "gen <script>", method="<b>m</b>", object=evil, anomaly="a&b",
                                    settings={"<k>": "<v>"})
    mask = np.zeros((16, 16), bool)
    mask[2:6, 2:6] = True
    generated.write_sample(0, np.zeros((16, 16, 3), np.uint8), np.zeros((16, 16, 3), np.uint8), mask,
                           {"seed": 1, "mask_area": float(mask.mean()), "<em>x</em>": 0.5})
    write_json(tmp_path / "eval" / "metrics.json",
               localization(evil, "<u>method</u>", dict.fromkeys(LOCALIZATION_KEYS, 0.5)))
    result = write_report(tmp_path)
    assert (result.tables, result.generated, result.evaluations) == (1, 1, 1)

    parser = parse(result.path)
    assert_links_resolve(result.path, parser)  # an injected <img src=x> would link to a missing file
    assert not {"script", "i", "u", "em"} & set(parser.tags) and "onerror" not in parser.attributes
    text = " ".join(parser.text)
    for name in (evil, "<script>alert(2)</script>", "<i>crack</i>", "<b>m</b>", "<em>x</em>", "<v>", "a&b"):
        assert name in text
    assert "Results: sweep <b>&\"'" in parser.titles and "Generated: gen <script>" in parser.titles


def test_a_run_folder_needs_a_run_config(tmp_path):
    def folder(name: str, config: str | None = None, *files: str) -> Path:
        path = tmp_path / name
        path.mkdir()
        if config is not None:
            (path / "config.json").write_text(config)
        for file in files:
            (path / file).write_text("step,loss\n")
        return path

    assert Run.is_run(folder("run", json.dumps({"steps": 10})))
    assert Run.is_run(folder("logged", json.dumps({"lr": 1}), "loss.csv"))
    assert not Run.is_run(folder("other", json.dumps({"lr": 1})))
    assert not Run.is_run(folder("list", "[1, 2]", "loss.csv"))
    assert not Run.is_run(folder("broken", "{ not json", "loss.csv"))
    assert not Run.is_run(folder("empty", None, "loss.csv"))
