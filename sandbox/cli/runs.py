"""``sandbox run``, ``resume``, ``report``, ``list`` and ``validate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from personahub.cli import llm_options as opt
from personahub.cli.common import console, fail
from sandbox.cli.common import Out, Quiet, fail_input, finish, input_errors
from sandbox.cli.estimate import print_estimate

# The run machinery (database, graph, model stack) is imported inside each command: `--help`
# must not load it (see sandbox.cli.common).


def register(app: typer.Typer) -> None:
    """Add the run commands to the ``sandbox`` app."""
    app.command()(opt.llm_flags()(run))
    app.command()(opt.llm_flags("backend", "base_url", "model", "config", "concurrency")(resume))
    app.command()(report)
    app.command("list")(list_runs)
    app.command()(validate)


def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    agents: Annotated[
        int | None, typer.Option("--agents", help="Number of agents (overrides sample).")
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Number of steps.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Run seed.")] = None,
    population: Annotated[
        str | None,
        typer.Option(
            "--population",
            metavar="PATH|URL",
            help="Persona source instead of the scenario's population.source: a JSONL/CSV/Parquet "
            "file, a persona store (.db), a database URL, or `sample`. The scenario's filter "
            "still applies.",
        ),
    ] = None,
    out: Out = Path("runs"),
    database: Annotated[
        str | None,
        typer.Option("--database", help="SQLAlchemy URL for the run database (default: run.db)."),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Print the run's cost estimate (as `sandbox estimate`); run nothing."
        ),
    ] = False,
    llm: opt.LLMFlags = opt.NO_FLAGS,
    quiet: Quiet = False,
) -> None:
    """Run a scenario to the end, then write runs/<run-id>/report.html and print a summary."""
    from sandbox.run_options import RunOptions
    from sandbox.runner import start_run

    options = RunOptions(
        agents=agents, steps=steps, seed=seed, out=out, database=database, population=population
    )
    if dry_run:
        print_estimate(scenario, options, llm)
        return
    try:
        outcome = start_run(scenario, options, llm.overrides(), llm.config, show_progress=not quiet)
    except input_errors() as exc:
        fail_input(exc)
    except KeyboardInterrupt:
        fail("interrupted; continue with `sandbox resume <run folder>` (see `sandbox list`)", 130)
    finish(outcome.database, outcome.run_id, outcome.run_dir)


def resume(
    run_ref: Annotated[
        str, typer.Argument(metavar="RUN", help="Run folder, run.db, run id or database URL.")
    ],
    out: Out = Path("runs"),
    switch_model: Annotated[
        bool,
        typer.Option(
            "--switch-model",
            help="Continue on the backend/model the flags or --config name, not the run's "
            "own (recorded with the run).",
        ),
    ] = False,
    llm: opt.LLMFlags = opt.NO_FLAGS,
    quiet: Quiet = False,
) -> None:
    """Continue a killed or interrupted run from its last committed step, on the LLM
    configuration it recorded; for an experiment's folder, every unfinished run of it."""
    from sandbox.run_folders import locate_run
    from sandbox.rundb import RunDatabase
    from sandbox.runner import resume_run

    try:
        path = locate_run(run_ref, out)
        if RunDatabase(path, must_exist=True).experiment_runs():
            _resume_experiment(path, llm, quiet)
            return
        outcome = resume_run(
            path,
            llm.overrides(),
            llm.config,
            show_progress=not quiet,
            out=out,
            switch_model=switch_model,
        )
    except input_errors() as exc:
        fail_input(exc)
    except KeyboardInterrupt:
        fail(f"interrupted again; continue with `sandbox resume {run_ref}`", 130)
    finish(outcome.database, outcome.run_id, outcome.run_dir)


def _resume_experiment(path: str, llm: opt.LLMFlags, quiet: bool) -> None:
    from sandbox.cli.experiment import finish_experiment
    from sandbox.experiment.execute import resume_experiment

    try:
        outcome = resume_experiment(path, llm.overrides(), llm.config, show_progress=not quiet)
    except input_errors() as exc:
        fail_input(exc)
    except KeyboardInterrupt:
        fail(f"interrupted again; continue with `sandbox resume {Path(path).parent}`", 130)
    finish_experiment(outcome.database, outcome.folder)


def report(
    run_ref: Annotated[
        str, typer.Argument(metavar="RUN", help="Run folder, run.db, run id or database URL.")
    ],
    out: Out = Path("runs"),
) -> None:
    """(Re)write a run's report.html from its database and print the summary."""
    from sandbox.run_folders import locate_run, run_folder
    from sandbox.rundb import RunDatabase

    try:
        path = locate_run(run_ref, out)
        run_row = RunDatabase(path, must_exist=True).run()
    except input_errors() as exc:
        fail_input(exc)
    if run_row is None:
        fail(f"{path} holds no run")
    finish(path, run_row.id, run_folder(path, run_row.id, out))


_LIST_COLUMNS = ("run", "status", "steps", "agents", "model", "created")


def list_runs(
    out: Out = Path("runs"),
    plain: Annotated[
        bool,
        typer.Option("--plain", help="Tab-separated lines with a header, for scripts."),
    ] = False,
) -> None:
    """List the runs under --runs with their status and progress."""
    from sandbox.run_folders import RUN_DB

    found = sorted(out.glob(f"*/{RUN_DB}")) if out.is_dir() else []
    if not found:
        console.print(f"no runs in {out}")
        return
    rows = [row for path in found if (row := _list_row(path)) is not None]
    if plain:
        for line in (_LIST_COLUMNS, *rows):
            print("\t".join(line))
        return
    # The id is what `report`/`resume`/`export` take: never cut or wrapped, whatever the
    # width. Where the table does not fit, each run takes two lines instead of a table whose
    # other columns would wrap a letter or two per line.
    widths = [max(len(v) for v in column) for column in zip(_LIST_COLUMNS, *rows, strict=True)]
    if sum(widths) + 3 * (len(widths) - 1) > console.width:
        console.print(f"runs in {out}", highlight=False, soft_wrap=True)
        for run, status, steps, agents, model, created in rows:
            console.print(f"\n{run}  {created}", highlight=False, soft_wrap=True)
            # an unreadable database has only its status
            details = (status, f"{steps} steps", f"{agents} agents", model) if steps else (status,)
            console.print(f"  {' · '.join(details)}", highlight=False)
        return
    table = Table(title=f"runs in {out}", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in _LIST_COLUMNS:
        table.add_column(column, no_wrap=True)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _list_row(path: Path) -> tuple[str, ...] | None:
    """One ``sandbox list`` row for the run database at ``path`` (None: it holds no run)."""
    from personahub.db.engine import DatabaseError
    from sandbox.rundb import RunDatabase

    try:
        database = RunDatabase(path, must_exist=True)
        row = database.run()
        n_agents = len(database.agents(row.id)) if row else 0
    except DatabaseError as exc:
        return (path.parent.name, f"unreadable: {exc}", "", "", "", "")
    database.close()
    if row is None:
        return None
    return (
        path.parent.name,
        row.status,
        f"{row.last_step + 1}/{row.steps_total}",
        str(n_agents),
        f"{row.backend}:{row.model}",
        f"{row.created:%Y-%m-%d %H:%M}",
    )


def validate(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    population: Annotated[
        bool,
        typer.Option(
            "--population",
            help="Also load the population: how many agents each event reaches, and which "
            "targets and segments match no persona.",
        ),
    ] = False,
) -> None:
    """Check a scenario file and describe it, without running anything."""
    from sandbox.coverage import coverage_warnings, expected_reach
    from sandbox.modes import mode_of
    from sandbox.population import load_cast
    from sandbox.scenario_loader import ScenarioError, load_scenario

    try:
        loaded = load_scenario(scenario)
    except ScenarioError as exc:
        fail_input(exc)
    table = Table(title=f"{scenario}: ok", show_header=False)
    table.add_row("name", loaded.name)
    table.add_row("mode", loaded.mode)
    table.add_row("population", f"{loaded.population.source} (sample {loaded.population.sample})")
    table.add_row("graph", loaded.graph.type)
    table.add_row("steps", str(loaded.steps))
    table.add_row("events", str(len(loaded.timeline)))
    for label, text in mode_of(loaded).describe(loaded):
        table.add_row(label, text)
    warnings: list[str] = []
    if population:
        try:
            cast = load_cast(loaded.population, loaded.seed, scenario.parent.resolve())
        except input_errors() as exc:
            fail_input(exc)
        table.add_row("agents", str(len(cast.personas)))
        for reach in expected_reach(loaded, cast.personas):
            table.add_row(reach.label, f"reaches {reach.reached} agent(s)")
        warnings = coverage_warnings(loaded, cast.personas)
    console.print(table)
    for line in warnings:
        console.print(f"[yellow]warning:[/] {line}", highlight=False, soft_wrap=True)
