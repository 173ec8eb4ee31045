"""Command-line interface: a thin layer over the Python API. Every user error ends in one line and status 2."""

from __future__ import annotations

import sys

import click

from dualanodiff.cli import data as _data  # noqa: F401
from dualanodiff.cli import evaluate as _evaluate  # noqa: F401
from dualanodiff.cli import model as _model  # noqa: F401
from dualanodiff.cli import report as _report  # noqa: F401
from dualanodiff.cli import sweep as _sweep  # noqa: F401
from dualanodiff.cli.app import app
from dualanodiff.errors import UserError


def main(argv: list[str] | None = None) -> None:
    try:
        result = app(args=argv, prog_name="dualanodiff", standalone_mode=False)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    except click.exceptions.Exit as exit_:
        sys.exit(exit_.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        print("interrupted; finished work is kept, run the same command again to resume", file=sys.stderr)
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)


__all__ = ["app", "main"]
