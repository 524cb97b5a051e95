"""What every ``sandbox`` command shares: the input errors it reports as one line, the folder
options and the closing report.

Nothing here (nor in the command modules) imports the run machinery at module level: the
database layer, the graph and the model stack load when a command runs, so ``--help`` stays
quick (``tests/test_cli_cold_start.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from personahub.cli.common import console, err_console, fail


def input_errors(*more: type[Exception]) -> tuple[type[Exception], ...]:
    """The errors of a bad input (scenario, population, settings, database, model, run),
    which a command reports as one line, and a command's own ``more``.

    A function, not a constant, because the modules defining them are the heavy ones; an
    ``except input_errors():`` clause calls it only when an exception reaches it.
    """
    from personahub.db.engine import DatabaseError
    from personahub.llm import ConfigError
    from personahub.llm.backends.local import ModelUnavailableError
    from sandbox.population import PopulationError
    from sandbox.run_folders import RunError
    from sandbox.run_llm import ModelSwitchError
    from sandbox.scenario import ScenarioError

    return (
        ScenarioError,
        PopulationError,
        ConfigError,
        DatabaseError,
        ModelUnavailableError,
        RunError,
        ModelSwitchError,
        *more,
    )


# One name for the folder of run folders in every command (`--out` is its older spelling,
# still accepted); `--out` alone names an output file only where a command writes one.
Out = Annotated[
    Path, typer.Option("--runs", "--out", help="Folder holding run folders.", metavar="DIR")
]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bars.")]
RunRef = Annotated[
    str, typer.Argument(metavar="RUN", help="Run folder, run.db, run id or database URL.")
]


def fail_input(exc: Exception) -> None:
    """Print every problem of a bad input as its own error line and exit 1."""
    from sandbox.scenario import ScenarioError

    problems = exc.problems if isinstance(exc, ScenarioError) else [str(exc)]
    for problem in problems[:-1]:
        err_console.print(f"[bold red]error:[/] {problem}", highlight=False, soft_wrap=True)
    fail(problems[-1])


def finish(database: str, run_id: str, run_dir: Path) -> None:
    """Write the run's report and print its summary (ending with the report's path)."""
    from sandbox.report import print_summary, write_report

    path = write_report(database, run_id, run_dir)
    print_summary(database, run_id, console=console, report_path=path)  # ends with the path
