"""Command-line interface: a thin layer over the Python API. Every user error ends in one line and status 2."""

from __future__ import annotations

import sys

import click
import typer

from dualanodiff.cli import data as _data  # noqa: F401
from dualanodiff.cli import evaluate as _evaluate  # noqa: F401
from dualanodiff.cli import model as _model  # noqa: F401
from dualanodiff.cli import report as _report  # noqa: F401
from dualanodiff.cli import sweep as _sweep  # noqa: F401
from dualanodiff.cli.app import app
from dualanodiff.errors import UserError, first_line

# Typer 0.29 and newer carry their own copy of click with their own exception classes; older ones use click's.
_EXIT = tuple({click.exceptions.Exit, typer.Exit})
_ABORT = tuple({click.exceptions.Abort, typer.Abort})
_USAGE = tuple({click.ClickException, typer.TyperException})


def _end_progress_bars() -> None:
    """Close the progress bars an error interrupted, so that its line starts a line of its own."""
    tqdm = sys.modules.get("tqdm")
    bars = list(getattr(tqdm.tqdm, "_instances", ())) if tqdm is not None else []
    for bar in bars:
        bar.close()
    if bars:
        print(file=sys.stderr)


def _refuse(message: str) -> None:
    _end_progress_bars()
    print(f"error: {message}", file=sys.stderr)
    sys.exit(UserError.exit_code)


def main(argv: list[str] | None = None) -> None:
    try:
        result = app(args=argv, prog_name="dualanodiff", standalone_mode=False)
    except UserError as error:
        _refuse(str(error))
    except OSError as error:  # the machine refused: a read-only or full disk, --out under a file, no permission
        _refuse(f"{error.filename}: " * bool(error.filename) + (error.strerror or first_line(error)))
    except _EXIT as exit_:
        sys.exit(exit_.exit_code)
    except _USAGE as error:
        if hasattr(error, "show"):
            error.show()
        else:
            print(f"Error: {error.format_message()}", file=sys.stderr)
        sys.exit(error.exit_code)
    except (*_ABORT, KeyboardInterrupt):
        print("interrupted; finished work is kept, run the same command again to resume", file=sys.stderr)
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)


__all__ = ["app", "main"]
