"""The baseline -> evaluate chain through the real command line, and its one-line errors."""

from pathlib import Path

import pytest
import torch

from dualanodiff.cli import main
from dualanodiff.io import read_json
from dualanodiff.report import write_report

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    captured = capsys.readouterr()
    return exit_.value.code, captured.out, captured.err


@pytest.fixture(scope="module")
def chain(synthetic_root: Path, tmp_path_factory) -> dict[str, Path]:
    """GEN folders for washer/crack (croppaste, cutpaste) and washer/rust (perlin), made through the CLI."""
    out = tmp_path_factory.mktemp("chain")
    gens = {}
    for method, anomaly in (("croppaste", "crack"), ("cutpaste", "crack"), ("perlin", "rust")):
        gens[f"{method}-{anomaly}"] = out / f"{method}-{anomaly}"
        with pytest.raises(SystemExit) as exit_:
            main(["baseline", method, "--data", str(synthetic_root), "--object", "washer", "--anomaly", anomaly,
                  "--num", "6", "--out", str(gens[f"{method}-{anomaly}"]), "--resolution", "64"])
        assert exit_.value.code == 0
    return gens


def test_baseline_then_localization_and_classification_through_the_cli(synthetic_root, chain, tmp_path, capsys):
    code, out, _ = _run(["evaluate", "localization", "--data", str(synthetic_root), "--object", "washer",
                         "--generated", str(chain["croppaste-crack"]), str(chain["cutpaste-crack"]),
                         "--generated", str(chain["perlin-rust"]), "--epochs", "1", "--resolution", "32",
                         "--base-width", "2", "--device", "cpu", "--out", str(tmp_path / "loc")], capsys)
    assert code == 0
    metrics = read_json(tmp_path / "loc" / "metrics.json")
    assert metrics["methods"] == ["croppaste", "cutpaste", "perlin"]
    assert [g["anomaly"] for g in metrics["generated"]] == ["crack", "crack", "rust"]
    assert "overall" in out and "crack" in out and "rust" in out

    code, out, _ = _run(["evaluate", "classification", "--data", str(synthetic_root),
                         "--generated", str(chain["croppaste-crack"]), str(chain["perlin-rust"]),
                         "--epochs", "1", "--resolution", "32", "--batch-size", "4", "--device", "cpu",
                         "--out", str(tmp_path / "cls")], capsys)
    assert code == 0
    assert "(ResNet-18 scratch)" in out
    assert read_json(tmp_path / "cls" / "metrics.json")["classes"] == ["crack", "rust"]

    # The report command finds both evaluations and the GENs' pictures.
    result = write_report(tmp_path)
    assert result.evaluations == 2


def test_user_errors_are_one_line_with_status_2(synthetic_root, chain, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty-hub"))
    cases = [
        (["evaluate", "quality", str(chain["perlin-rust"]), "--data", str(synthetic_root), "--out", str(tmp_path)],
         "inception_v3_google-0cc3c7bd.pth"),
        (["evaluate", "localization", "--data", str(synthetic_root), "--object", "fabric",
          "--generated", str(chain["perlin-rust"]), "--out", str(tmp_path)], "holds object 'washer', not 'fabric'"),
        (["evaluate", "classification", "--data", str(synthetic_root), "--generated", str(chain["perlin-rust"]),
          "--out", str(tmp_path)], "at least 2 anomaly types"),
        (["evaluate", "localization", "--data", str(synthetic_root), "--generated", str(tmp_path / "missing"),
          "--out", str(tmp_path)], "not a generated set"),
        (["evaluate", "localization", "--data", str(synthetic_root), "--generated", str(chain["perlin-rust"]),
          "--resolution", "40", "--out", str(tmp_path)], "multiple of 32"),
        (["baseline", "croppaste", "--data", str(synthetic_root), "--object", "washer", "--anomaly", "dent",
          "--num", "2", "--out", str(tmp_path / "g")], "unknown anomaly type 'dent'"),
    ]
    for argv, message in cases:
        code, _, err = _run(argv, capsys)
        assert code == 2, argv
        assert err.startswith("error: ") and message in err, err
        assert err.count("\n") == 1, err
