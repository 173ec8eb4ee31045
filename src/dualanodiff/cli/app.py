"""The Typer application that every command module registers on."""

import typer

app = typer.Typer(
    name="dualanodiff",
    help="Generate realistic industrial anomaly images with pixel-exact masks from a few examples "
    "(DualAnoDiff, CVPR 2025).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
evaluate_app = typer.Typer(
    help="Measure generated anomalies: downstream localization, classification, and generation quality.",
    no_args_is_help=True,
)
app.add_typer(evaluate_app, name="evaluate")
