"""``sandbox tables``: a run's agents, interactions, metrics, messages and edges as CSV or
Parquet files, for analysts who live in pandas, R or a spreadsheet."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from personahub.cli.common import console
from sandbox.cli.common import Out, RunRef, fail_input, input_errors


class TableFormat(StrEnum):
    csv = "csv"
    parquet = "parquet"


def register(app: typer.Typer) -> None:
    """Add ``tables`` to the ``sandbox`` app."""
    app.command()(tables)


def tables(
    run_ref: RunRef,
    folder: Annotated[
        Path | None,
        typer.Option("--to", help="Folder to write into (default: the run's folder, tables/)."),
    ] = None,
    fmt: Annotated[TableFormat, typer.Option("--format", help="csv or parquet.")] = TableFormat.csv,
    out: Out = Path("runs"),
) -> None:
    """Write a run's tables (agents, interactions, metrics, messages, edges, dialogue) as files.

    In Python, `from sandbox import load_run` gives the same tables as pandas DataFrames
    (see docs/analysis.md).
    """
    from sandbox.frames import load_run
    from sandbox.run_folders import run_folder

    try:
        run = load_run(run_ref, runs=out)
    except input_errors() as exc:
        fail_input(exc)
    target = folder or run_folder(run.database.target, run.run_id, out) / "tables"
    written = run.save(target, fmt.value)
    run.close()
    for path in written:
        console.print(str(path), highlight=False, soft_wrap=True)
