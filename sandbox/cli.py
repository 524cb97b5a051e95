"""The ``sandbox`` command: run, resume, report on, list, validate and export scenario runs."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from personahub.cli import llm_options as opt
from personahub.cli.common import console, err_console, fail
from personahub.db.engine import DatabaseError
from personahub.llm import ConfigError
from personahub.llm.backends.local import ModelUnavailableError
from sandbox.modes import mode_of
from sandbox.population import PopulationError
from sandbox.run_llm import ModelSwitchError
from sandbox.rundb import RunDatabase
from sandbox.runner import (
    RUN_DB,
    RunError,
    RunOptions,
    locate_run,
    resume_run,
    run_folder,
    start_run,
)
from sandbox.scenario_loader import ScenarioError, load_scenario

app = typer.Typer(
    help="Persona simulation sandbox: personas become agents on a relationship graph, react to "
    "a scenario step by step, and every interaction is logged to runs/<run-id>/run.db. "
    "Start with `sandbox run scenarios/product_launch.yaml`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

INPUT_ERRORS = (
    ScenarioError,
    PopulationError,
    ConfigError,
    DatabaseError,
    ModelUnavailableError,
    RunError,
    ModelSwitchError,
)

Out = Annotated[Path, typer.Option("--out", help="Folder holding run folders.")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bars.")]


def _fail_input(exc: Exception) -> None:
    problems = exc.problems if isinstance(exc, ScenarioError) else [str(exc)]
    for problem in problems[:-1]:
        err_console.print(f"[bold red]error:[/] {problem}", highlight=False, soft_wrap=True)
    fail(problems[-1])


def _finish(database: str, run_id: str, run_dir: Path) -> None:
    from sandbox.report import print_summary, write_report

    path = write_report(database, run_id, run_dir)
    print_summary(database, run_id, console=console, report_path=path)  # ends with the path


@app.command()
@opt.llm_flags()
def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    agents: Annotated[
        int | None, typer.Option("--agents", help="Number of agents (overrides sample).")
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Number of steps.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Run seed.")] = None,
    out: Out = Path("runs"),
    database: Annotated[
        str | None,
        typer.Option("--database", help="SQLAlchemy URL for the run database (default: run.db)."),
    ] = None,
    llm: opt.LLMFlags = opt.NO_FLAGS,
    quiet: Quiet = False,
) -> None:
    """Run a scenario to the end, then write runs/<run-id>/report.html and print a summary."""
    options = RunOptions(agents=agents, steps=steps, seed=seed, out=out, database=database)
    try:
        outcome = start_run(scenario, options, llm.overrides(), llm.config, show_progress=not quiet)
    except INPUT_ERRORS as exc:
        _fail_input(exc)
    except KeyboardInterrupt:
        fail("interrupted; continue with `sandbox resume <run folder>` (see `sandbox list`)", 130)
    _finish(outcome.database, outcome.run_id, outcome.run_dir)


@app.command()
@opt.llm_flags("backend", "base_url", "model", "config", "concurrency")
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
    configuration it recorded."""
    try:
        path = locate_run(run_ref, out)
        outcome = resume_run(
            path,
            llm.overrides(),
            llm.config,
            show_progress=not quiet,
            out=out,
            switch_model=switch_model,
        )
    except INPUT_ERRORS as exc:
        _fail_input(exc)
    except KeyboardInterrupt:
        fail(f"interrupted again; continue with `sandbox resume {run_ref}`", 130)
    _finish(outcome.database, outcome.run_id, outcome.run_dir)


@app.command()
def report(
    run_ref: Annotated[
        str, typer.Argument(metavar="RUN", help="Run folder, run.db, run id or database URL.")
    ],
    out: Out = Path("runs"),
) -> None:
    """(Re)write a run's report.html from its database and print the summary."""
    try:
        path = locate_run(run_ref, out)
        run_row = RunDatabase(path, must_exist=True).run()
    except INPUT_ERRORS as exc:
        _fail_input(exc)
    if run_row is None:
        fail(f"{path} holds no run")
    _finish(path, run_row.id, run_folder(path, run_row.id, out))


@app.command("list")
def list_runs(out: Out = Path("runs")) -> None:
    """List the runs under --out with their status and progress."""
    table = Table(title=f"runs in {out}")
    for column in ("run", "status", "steps", "agents", "model", "created"):
        table.add_column(column)
    found = sorted(out.glob(f"*/{RUN_DB}")) if out.is_dir() else []
    for path in found:
        try:
            database = RunDatabase(path, must_exist=True)
            row = database.run()
            n_agents = len(database.agents(row.id)) if row else 0
        except DatabaseError as exc:
            table.add_row(path.parent.name, f"unreadable: {exc}", "", "", "", "")
            continue
        if row is None:
            continue
        table.add_row(
            path.parent.name,
            row.status,
            f"{row.last_step + 1}/{row.steps_total}",
            str(n_agents),
            f"{row.backend}:{row.model}",
            f"{row.created:%Y-%m-%d %H:%M}",
        )
        database.close()
    if not found:
        console.print(f"no runs in {out}")
        return
    console.print(table)


@app.command()
def validate(scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")]) -> None:
    """Check a scenario file and describe it, without running anything."""
    try:
        loaded = load_scenario(scenario)
    except ScenarioError as exc:
        _fail_input(exc)
    table = Table(title=f"{scenario}: ok", show_header=False)
    table.add_row("name", loaded.name)
    table.add_row("mode", loaded.mode)
    table.add_row("population", f"{loaded.population.source} (sample {loaded.population.sample})")
    table.add_row("graph", loaded.graph.type)
    table.add_row("steps", str(loaded.steps))
    table.add_row("events", str(len(loaded.timeline)))
    for label, text in mode_of(loaded).describe(loaded):
        table.add_row(label, text)
    console.print(table)


class ExportFormat(StrEnum):
    openai = "openai"
    sharegpt = "sharegpt"
    parquet = "parquet"


class ExportRole(StrEnum):
    agent = "agent"
    npc = "npc"
    all = "all"


@app.command()
def export(
    run_ref: Annotated[
        str, typer.Argument(metavar="RUN", help="Run folder, run.db, run id or database URL.")
    ],
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="openai (chat JSONL), sharegpt (JSON array) or parquet (messages + metadata).",
        ),
    ],
    out_file: Annotated[
        Path,
        typer.Option("--out", help="Output file; with --split, FILE.train.EXT and FILE.val.EXT."),
    ],
    role: Annotated[
        ExportRole,
        typer.Option("--role", help="agent (forecast replies), npc (conversation sides) or all."),
    ] = ExportRole.all,
    min_turns: Annotated[
        int, typer.Option("--min-turns", min=0, help="Fewest non-system messages per sample.")
    ] = 2,
    dedup: Annotated[
        bool, typer.Option("--dedup/--no-dedup", help="Drop near-duplicates (MinHash 0.9).")
    ] = True,
    split: Annotated[
        float | None,
        typer.Option("--split", help="Training fraction of a train/validation split, e.g. 0.9."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split.")] = 0,
    runs: Annotated[
        Path, typer.Option("--runs", help="Folder holding run folders (for a run id).")
    ] = Path("runs"),
) -> None:
    """Turn a run's agent replies and NPC conversations into fine-tuning data."""
    # Here, not at the top: MinHash and Parquet libraries take seconds to import.
    from sandbox.export import ExportError, export_run, report_table

    try:
        path = locate_run(run_ref, runs)
        result = export_run(
            path,
            out_file,
            fmt.value,
            role=role.value,
            min_turns=min_turns,
            dedup=dedup,
            split=split,
            seed=seed,
        )
    except (*INPUT_ERRORS, ExportError) as exc:
        _fail_input(exc)
    console.print(report_table(result))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
