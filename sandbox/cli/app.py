"""The ``sandbox`` command: run, resume, report on, list, validate and export scenario runs.
Each command group is its own module in this package and adds itself with ``register``."""

from __future__ import annotations

import typer

from sandbox.cli import calibrate, export, runs

app = typer.Typer(
    help="Persona simulation sandbox: personas become agents on a relationship graph, react to "
    "a scenario step by step, and every interaction is logged to runs/<run-id>/run.db. "
    "Start with `sandbox run scenarios/product_launch.yaml`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
runs.register(app)
export.register(app)
calibrate.register(app)


def main() -> None:
    app()
