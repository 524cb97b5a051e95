"""``sandbox experiment`` (run an experiment file) and ``sandbox compare`` (runs side by side).
``sandbox resume`` continues an experiment too (see :func:`finish_experiment`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from personahub.cli import llm_options as opt
from personahub.cli.common import console, fail
from sandbox.cli.common import Out, Quiet, fail_input, input_errors


def register(app: typer.Typer) -> None:
    """Add the experiment commands to the ``sandbox`` app."""
    app.command()(opt.llm_flags()(experiment))
    app.command()(compare)


def experiment(
    scenario: Annotated[Path, typer.Argument(help="Experiment file (scenario + experiment:).")],
    seeds: Annotated[
        int | None, typer.Option("--seeds", help="Replicates per arm (overrides seeds).")
    ] = None,
    agents: Annotated[
        int | None, typer.Option("--agents", help="Number of agents (overrides sample).")
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Number of steps.")] = None,
    out: Out = Path("runs"),
    llm: opt.LLMFlags = opt.NO_FLAGS,
    quiet: Quiet = False,
) -> None:
    """Run every arm x seed x sweep point side by side, then write
    runs/<experiment-id>/experiment.html and print the effects."""
    from sandbox.experiment.execute import start_experiment
    from sandbox.run_options import RunOptions

    options = RunOptions(agents=agents, steps=steps, out=out)
    try:
        outcome = start_experiment(
            scenario, options, llm.overrides(), llm.config, seeds, show_progress=not quiet
        )
    except input_errors() as exc:
        fail_input(exc)
    except KeyboardInterrupt:
        fail("interrupted; continue with `sandbox resume <experiment folder>`", 130)
    finish_experiment(outcome.database, outcome.folder)


def finish_experiment(database: str, folder: Path) -> None:
    """Write each run's report and the experiment's, and print its effects and statuses."""
    from sandbox.experiment.report import (
        build_view,
        groups_of,
        print_experiment_summary,
        write_experiment_report,
        write_run_reports,
    )
    from sandbox.rundb import RunDatabase

    reports = write_run_reports(database, folder)
    db = RunDatabase(database, must_exist=True)
    try:
        rows = db.experiment_runs()
        view = build_view(groups_of(db), rows[0].experiment, "experiment", reports)
    except ValueError as exc:
        fail(str(exc))
    finally:
        db.close()
    print_experiment_summary(view, console)
    statuses: dict[str, int] = {}
    for run in view.runs:
        statuses[run["status"]] = statuses.get(run["status"], 0) + 1
    console.print(
        "runs: " + ", ".join(f"{n} {status}" for status, n in statuses.items()), highlight=False
    )
    path = write_experiment_report(view, folder)
    console.print(f"report: {path}", highlight=False, soft_wrap=True)


def compare(
    runs: Annotated[
        list[str],
        typer.Argument(
            metavar="RUN...",
            help="Two or more runs: run folders, run.db files, or EXPERIMENT_FOLDER/RUN_ID. "
            "The first is the reference.",
        ),
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for compare.html.")] = Path(
        "runs/compare"
    ),
) -> None:
    """Effects of each run over the first, for runs that asked the same questions."""
    from sandbox.experiment.compare import compare_runs

    if len(runs) < 2:
        fail("compare needs two or more runs")
    try:
        view, path = compare_runs(runs, out_dir)
    except input_errors(ValueError) as exc:
        fail_input(exc)
    from sandbox.experiment.report import print_experiment_summary

    print_experiment_summary(view, console)
    console.print(f"report: {path}", highlight=False, soft_wrap=True)
