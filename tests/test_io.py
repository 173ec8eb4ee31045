"""Atomic writes: all or nothing, and ordinary permissions."""

import os
import stat

import pytest

from dualanodiff.io import atomic_write, read_json, write_json


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"a": 1})

    def fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(target, fail)
    assert read_json(target) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_written_files_get_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        write_json(tmp_path / "x.json", {})
    finally:
        os.umask(umask)
    mode = stat.S_IMODE((tmp_path / "x.json").stat().st_mode)
    assert mode & 0o044  # group and others can read it, as with any new file


def test_a_file_that_is_not_json_is_a_one_line_user_error(tmp_path):
    from dualanodiff.errors import UserError

    (tmp_path / "bad.json").write_text("{'a': 1")
    with pytest.raises(UserError, match=r"bad\.json: not valid JSON") as error:
        read_json(tmp_path / "bad.json")
    assert isinstance(error.value, ValueError) and "\n" not in str(error.value)


def test_a_folder_has_one_writer_and_its_stale_temporary_files_go(tmp_path):
    from dualanodiff.errors import UserError
    from dualanodiff.io import folder_lock

    stale = tmp_path / "out" / "image" / ".0003.png.k2j4.tmp"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half a png")
    with folder_lock(tmp_path / "out"):
        assert not stale.exists()
        refused = pytest.raises(UserError, match=rf"another dualanodiff process \(PID {os.getpid()}\) is writing")
        with refused, folder_lock(tmp_path / "out"):
            pass
    with folder_lock(tmp_path / "out"):  # released when the first writer is done
        pass
