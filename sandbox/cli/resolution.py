"""``sandbox resolve`` and ``sandbox track``: forecasts scored against what really happened."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from personahub.cli.common import console
from sandbox.cli.common import Out, RunRef, fail_input, input_errors

if TYPE_CHECKING:  # the run database and the scoring load when a command runs, not for --help
    from sandbox.forecast.resolution import Resolved


def register(app: typer.Typer) -> None:
    """Add ``resolve`` and ``track`` to the ``sandbox`` app."""
    app.command()(resolve)
    app.command()(track)


def resolve(
    run_ref: RunRef,
    question: Annotated[str, typer.Option("--question", help="The question's id.")],
    actual: Annotated[
        str | None,
        typer.Option("--actual", help='Real shares, e.g. "yes=0.41,no=0.59" (or "mean=42").'),
    ] = None,
    actual_csv: Annotated[
        Path | None,
        typer.Option("--actual-csv", help="CSV of real answers, one respondent a row."),
    ] = None,
    column: Annotated[
        str | None,
        typer.Option("--column", help="Answer column of --actual-csv (default: the question id)."),
    ] = None,
    by: Annotated[
        str | None, typer.Option("--by", help="Who records it (default: your login name).")
    ] = None,
    out: Out = Path("runs"),
) -> None:
    """Record a question's real outcome in the run database and score the run's forecast."""
    from sandbox.forecast.resolution import ResolutionError, scores_table
    from sandbox.forecast.resolution import resolve as record
    from sandbox.run_folders import locate_run
    from sandbox.rundb import RunDatabase

    try:
        db = RunDatabase(locate_run(run_ref, out), must_exist=True)
        try:
            item = record(
                db, None, question, shares=actual, answers=actual_csv, column=column, who=by
            )
        finally:
            db.close()
    except input_errors(ResolutionError) as exc:
        fail_input(exc)
    console.print(scores_table([item], f"resolved: {item.run_id} {item.question.id}"))


def track(
    out: Out = Path("runs"),
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="Also write the table to this CSV file.")
    ] = None,
) -> None:
    """List every resolved run under --runs with its forecast's scores against the outcome."""
    from sandbox.forecast.resolution import COLUMNS, cells, resolved, scores_table
    from sandbox.run_folders import RUN_DB
    from sandbox.rundb import RunDatabase

    items: list[Resolved] = []
    for path in sorted(out.glob(f"*/{RUN_DB}")) if out.is_dir() else []:
        try:
            db = RunDatabase(path, must_exist=True)
        except input_errors() as exc:
            console.print(f"[yellow]skipped {path}: {exc}[/]", highlight=False)
            continue
        try:
            run = db.run()
            items += resolved(db, run) if run is not None else []
        finally:
            db.close()
    if csv_file is not None:
        with csv_file.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            writer.writerows(cells(item) for item in items)
    if not items:
        console.print(f"no resolved runs in {out} (record outcomes with `sandbox resolve`)")
        return
    console.print(scores_table(items, f"resolved runs in {out}"))
