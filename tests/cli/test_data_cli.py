"""`dualanodiff data` and `dualanodiff synth` through the real entry point, and once through `python -m`."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dualanodiff.cli import main
from dualanodiff.io import save_image


def run(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(args)
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


@pytest.fixture
def broken_root(synthetic_root, tmp_path) -> Path:
    """A copy of the synthetic washer with two problems: a crack image without its mask, and a note."""
    root = tmp_path / "broken"
    shutil.copytree(synthetic_root / "washer", root / "washer")
    (root / "washer/ground_truth/crack/003_mask.png").unlink()
    (root / "washer/test/rust/notes.txt").write_text("x")
    return root


def test_data_prints_counts_and_exits_0(synthetic_root, capsys):
    code, out, err = run(["data", str(synthetic_root)], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"data: {synthetic_root} (MVTec AD layout)"
    assert "object fabric: 60 normal train, 8 normal test, 2 anomaly types" in lines
    assert "  rust: 12 images, split 4 train / 8 test" in lines
    assert lines[-1] == "no problems found"


def test_data_for_one_object_with_a_train_count(synthetic_root, capsys):
    code, out, _ = run(["data", str(synthetic_root), "--object", "washer", "--train-count", "3"], capsys)
    assert code == 0
    assert "fabric" not in out and "  crack: 12 images, split 3 train / 9 test" in out
    assert "the first 3 train (train_count)" in out


def test_data_lists_every_problem_and_exits_2(broken_root, capsys):
    code, out, err = run(["data", str(broken_root), "--train-count", "12"], capsys)
    assert code == 2
    problems = [line for line in out.splitlines() if line.startswith("problem: ")]
    assert len(problems) == 4, out
    assert any("003.png: no mask" in line for line in problems)
    assert any("notes.txt: unsupported file type '.txt'" in line for line in problems)
    assert sum("train count 12 does not fit" in line for line in problems) == 2  # crack has 11 usable images
    assert err == f"error: {broken_root}: 4 problem(s) found (listed above)\n"


@pytest.mark.parametrize(("args", "message"), [
    (["data", "{tmp}/nowhere"], "{tmp}/nowhere: data folder not found"),
    (["data", "{root}", "--object", "bolt"], "unknown object 'bolt' (objects: fabric, washer)"),
    (["data", "{root}", "--layout", "{tmp}/none.json"], "{tmp}/none.json: layout file not found"),
    (["synth", "{tmp}/s", "--size", "8"], "--size 8: must be between 32 and 1024 pixels"),
])
def test_user_errors_are_one_line(synthetic_root, tmp_path, capsys, args, message):
    args = [a.format(tmp=tmp_path, root=synthetic_root) for a in args]
    code, _, err = run(args, capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert message.format(tmp=tmp_path) in err


def test_synth_writes_a_checked_data_set(tmp_path, capsys):
    code, out, err = run(["synth", str(tmp_path / "syn"), "--seed", "3", "--size", "32"], capsys)
    assert code == 0, err
    assert out.splitlines()[0] == "synthetic data set, seed 3, 32x32 pixels:"
    assert "  hole: 12 images, split 4 train / 8 test" in out
    assert len(list((tmp_path / "syn/fabric/train/good").glob("*.png"))) == 60
    assert run(["data", str(tmp_path / "syn")], capsys)[0] == 0


def test_help_shows_examples(capsys):
    for command in ("data", "synth"):
        code, out, _ = run([command, "--help"], capsys)
        assert code == 0 and f"Example: dualanodiff {command} " in out


def test_console_path_exit_code_and_one_line_stderr(tmp_path):
    root = tmp_path / "tiny"
    save_image(root / "part/train/good/000.png", np.zeros((8, 8, 3), np.uint8))
    save_image(root / "part/test/dent/000.png", np.zeros((8, 8, 3), np.uint8))
    save_image(root / "part/ground_truth/dent/000_mask.png", np.zeros((8, 8), np.uint8))  # empty mask
    result = subprocess.run([sys.executable, "-m", "dualanodiff", "data", str(root)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"problem: {root}/part/ground_truth/dent/000_mask.png: mask is empty" in result.stdout
    assert result.stderr == f"error: {root}: 1 problem(s) found (listed above)\n"


def test_help_and_data_start_without_torch(synthetic_root):
    """A user who checks a data set should not wait for torch to import."""
    script = ("import sys\nfrom dualanodiff.cli import main\n"
              f"for argv in (['--help'], ['data', {str(synthetic_root)!r}]):\n"
              "    try:\n        main(argv)\n"
              "    except SystemExit as exit_:\n        assert exit_.code == 0, exit_.code\n"
              "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "False"
