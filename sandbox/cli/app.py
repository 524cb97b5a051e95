"""The ``sandbox`` command: run, estimate, resume, report on, list, validate and export
scenario runs. Each command group is its own module in this package and adds itself with
``register``."""

from __future__ import annotations

import typer

from sandbox.cli import (
    calibrate,
    estimate,
    experiment,
    export,
    interview,
    resolution,
    runs,
    serve,
    ssr,
    tables,
)

app = typer.Typer(
    help="Persona simulation sandbox: personas become agents on a relationship graph, react to "
    "a scenario step by step, and every interaction is logged to runs/<run-id>/run.db. "
    "Start with `sandbox run scenarios/product_launch.yaml`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help: Click re-wraps docstrings to the terminal's width; Rich's boxes kept their
    # hard line breaks and squeezed option help into a column a few words wide at 80 columns.
    rich_markup_mode=None,
)
runs.register(app)
export.register(app)
tables.register(app)
estimate.register(app)
experiment.register(app)
resolution.register(app)
ssr.register(app)
interview.register(app)
serve.register(app)
calibrate.register(app)


def main() -> None:
    app()
