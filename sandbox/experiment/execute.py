"""Run an experiment: every arm x seed x sweep point side by side through one gateway client.

The population and graph are built once and shared by every run (a paired design). All runs'
models step concurrently on one event loop (:meth:`ForecastModel.astep`): each run submits its
step's batch as soon as its previous step is recorded, and the batches of all runs share one
concurrency limit, one cache and one budget (:class:`RunClient`). Each run is created, recorded
and resumed by the runner's own code (:func:`create_run`, :func:`rebuild_run`,
:func:`recording_status`), in one run database under ``runs/<experiment-id>/``, each with
the cost estimate a lone run of it stores (:func:`run_estimate`).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from personahub.llm import LLMClient, load_settings
from sandbox.experiment.client import RunClient
from sandbox.experiment.plan import plan, records
from sandbox.experiment.spec import load_experiment
from sandbox.graph import build_graph
from sandbox.modes import RunModel, RunSetup
from sandbox.population import load_cast
from sandbox.run_folders import RUN_DB, RunError, check_out, new_run_id
from sandbox.run_llm import check_model, client_for_resume
from sandbox.run_options import RunOptions, effective_scenario, llm_overrides
from sandbox.run_record import create_run, rebuild_run
from sandbox.rundb import RunDatabase
from sandbox.runner import preflight_loop, recording_status, run_estimate


@dataclass(frozen=True, slots=True)
class ExperimentOutcome:
    """Where an experiment is and how its runs ended (status -> number of runs)."""

    experiment_id: str
    folder: Path
    database: str
    statuses: dict[str, int]


@dataclass(frozen=True, slots=True)
class _Run:
    arm: str
    model: RunModel


def start_experiment(
    path: Path,
    options: RunOptions,
    llm_cli: dict[str, Any],
    config_file: Path | None = None,
    seeds: int | None = None,
    show_progress: bool = True,
    llm: LLMClient | None = None,
) -> ExperimentOutcome:
    """Create every run of an experiment file and run them all to the end.

    Raises:
        ScenarioError, PopulationError, ConfigError, DatabaseError, RunError: bad input or a
            run whose model could not be reached (the others still finish).
        KeyboardInterrupt: Interrupted; unfinished runs are marked ``interrupted``.
    """
    check_out(options.out)
    experiment = load_experiment(path, seeds)
    base = effective_scenario(experiment.base, RunOptions(agents=options.agents))
    cast_ = load_cast(base.population, base.seed, path.parent.resolve(), options.agents)
    graph = build_graph(base.graph, cast_, base.seed)
    client = llm or LLMClient(load_settings(config_file, **llm_overrides(base, llm_cli)))
    loop = preflight_loop(client)
    experiment_id = new_run_id(experiment.name)
    folder = options.out / experiment_id
    database = RunDatabase(folder / RUN_DB)
    try:
        planned = plan(experiment, experiment_id, options)
        limit = asyncio.Semaphore(client.settings.concurrency)
        runs = []
        for item in planned:
            view = cast(LLMClient, RunClient(client, limit))  # the part of it a model uses
            setup = RunSetup(
                item.scenario,
                cast_.personas,
                graph,
                view,
                item.scenario.seed,
                item.run_id,
                database,
                loop,
            )
            # Each run's own estimate, as a lone run stores it: arms differ in what they ask.
            estimate = run_estimate(item.scenario, cast_.personas, graph, client)
            runs.append(_Run(item.condition.arm, create_run(setup, path, estimate)))
        database.add_experiment_runs(records(experiment, experiment_id, planned))
        _run_all(runs, database, loop, show_progress)
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()
    return ExperimentOutcome(experiment_id, folder, str(folder / RUN_DB), _statuses(database))


def resume_experiment(
    database_path: str | Path,
    llm_cli: dict[str, Any],
    config_file: Path | None = None,
    show_progress: bool = True,
    llm: LLMClient | None = None,
) -> ExperimentOutcome:
    """Continue every unfinished run of an experiment, on the LLM configuration it recorded.

    Raises:
        RunError: Not an experiment's database, or a run that could not be continued.
    """
    database = RunDatabase(database_path, must_exist=True)
    rows = database.experiment_runs()
    if not rows:
        raise RunError(f"{database_path} holds no experiment")
    folder = Path(database_path).parent
    unfinished = []
    for row in rows:
        run = database.run(row.run_id)
        if run is not None and run.status != "completed":
            unfinished.append((row, run))
    if not unfinished:
        return ExperimentOutcome(
            rows[0].experiment, folder, str(database_path), _statuses(database)
        )
    client = llm or client_for_resume(unfinished[0][1], llm_cli, config_file)
    loop = preflight_loop(client)
    try:
        limit = asyncio.Semaphore(client.settings.concurrency)
        runs = []
        for row, run in unfinished:
            check_model(database, run, client, switch_model=False)
            view = RunClient(client, limit)
            view.continue_usage(run.usage or {})
            model = rebuild_run(database, run, cast(LLMClient, view), loop)
            runs.append(_Run(row.arm, model))
        _run_all(runs, database, loop, show_progress)
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()
    return ExperimentOutcome(rows[0].experiment, folder, str(database_path), _statuses(database))


def _statuses(database: RunDatabase) -> dict[str, int]:
    runs = [database.run(row.run_id) for row in database.experiment_runs()]
    return dict(Counter(run.status for run in runs if run is not None))


def _run_all(
    runs: list[_Run],
    database: RunDatabase,
    loop: asyncio.AbstractEventLoop,
    show_progress: bool,
) -> None:
    """Step every run to its end, concurrently; a run that fails leaves the others going.

    Raises:
        RunError: The first run that could not reach its model (after all others ended).
        KeyboardInterrupt: Every run still going is marked ``interrupted``.
    """
    with _arm_progress(show_progress, runs) as advance:

        async def drive(run: _Run) -> None:
            model = run.model
            with recording_status(model, database):
                while model.running:
                    await model.astep()  # type: ignore[attr-defined]
                    advance(run.arm)

        async def everything() -> list[BaseException | None]:
            return await asyncio.gather(*(drive(run) for run in runs), return_exceptions=True)

        try:
            outcomes = loop.run_until_complete(everything())
        except KeyboardInterrupt:
            for run in runs:
                row = database.run(run.model.run_id)
                if row is not None and row.status == "running":
                    database.set_status(row.id, "interrupted", run.model.llm.usage())
            raise
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    if failures:
        raise failures[0]


@contextmanager
def _arm_progress(enabled: bool, runs: list[_Run]) -> Iterator[Callable[[str], None]]:
    """Yields ``advance(arm)``, called as a run of that arm records a step: one bar per arm
    over the steps of all its runs (a no-op when disabled)."""
    if not enabled:
        yield lambda arm: None
        return
    totals: dict[str, list[int]] = {}
    for run in runs:
        done, total = totals.setdefault(run.arm, [0, 0])
        totals[run.arm] = [done + run.model.steps, total + run.model.scenario.steps]
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps"),
        TimeElapsedColumn(),
    ) as bar:
        tasks = {
            arm: bar.add_task(arm, total=total, completed=done)
            for arm, (done, total) in totals.items()
        }
        yield lambda arm: bar.advance(tasks[arm])
