"""Atomic file output: a reader never sees a half-written file, and an interrupted job leaves none behind."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dualanodiff.errors import JSONFileError, UserError

# mkstemp makes 0600 files; a finished output should get the permissions any new file would (0666 minus umask).
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp_path)` on a temporary file beside `path`, then rename it into place.

    The rename is atomic on POSIX file systems, so `path` either holds the old content or the complete new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp_name)
    try:
        write(tmp_path)
        os.chmod(tmp_path, _FILE_MODE)
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)
    return path


def ordinary_permissions(folder: str | Path) -> None:
    """Give every file under `folder` the permissions a new file gets (libraries that write through temporary
    files, safetensors among them, leave 0600)."""
    for path in Path(folder).rglob("*"):
        if path.is_file() and not path.is_symlink():
            os.chmod(path, _FILE_MODE)


def write_json(path: str | Path, data: Any) -> Path:
    """Write `data` as indented JSON, atomically."""
    text = json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def read_json(path: str | Path) -> Any:
    """The parsed content of a JSON file; a file that is not JSON is a one-line `JSONFileError` naming it."""
    try:
        return json.loads(Path(path).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise JSONFileError(f"{path}: not valid JSON ({error})") from None


def save_image(path: str | Path, image: Image.Image | np.ndarray) -> Path:
    """Save an image (PIL, or a uint8 HxW / HxWxC array) as PNG, atomically."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


LOCK_FILE = ".dualanodiff.lock"


@contextlib.contextmanager
def folder_lock(folder: str | Path, *, tidy: bool = True) -> Iterator[None]:
    """Hold `folder` for one writer: a second one is refused in one line naming the holder's PID. With `tidy`,
    the temporary files an interrupted writer left behind (`.NAME.XXXX.tmp`) are removed first."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, _FILE_MODE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise UserError(f"{folder}: another dualanodiff process (PID {holder}) is writing here; wait for it "
                            "to finish or choose another output folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        if tidy:
            for stale in folder.rglob(".*.tmp"):
                stale.unlink(missing_ok=True)
        yield
    finally:
        os.close(fd)  # closing releases the lock
