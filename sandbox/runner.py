"""Start, resume and finish runs: scenario + population + graph -> model -> run database.

A run lives in ``runs/<run-id>/`` (``run.db``, ``report.html``). Its database holds the
effective scenario (CLI overrides applied), the agents, the graph and the LLM settings (never
the key), so ``resume`` needs nothing but the run folder.

Where runs live is in :mod:`sandbox.run_folders`, how the inputs are put together in
:mod:`sandbox.run_options`, how a run is recorded and rebuilt in :mod:`sandbox.run_record`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from personahub.llm import LLMClient, load_settings
from sandbox.modes import RunModel, RunSetup
from sandbox.population import PersonaRecord
from sandbox.run_folders import RUN_DB, RunError, check_out, new_run_id, run_folder
from sandbox.run_llm import check_model, client_for_resume
from sandbox.run_options import RunOptions, llm_overrides, load_inputs
from sandbox.run_record import create_run, rebuild_run
from sandbox.rundb import RunDatabase
from sandbox.scenario import ScenarioBase


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a started or resumed run ended: its id, folder, database and final status."""

    run_id: str
    run_dir: Path
    database: str
    status: str


@contextmanager
def _progress(enabled: bool, total_steps: int, first_step: int) -> Iterator[Callable[..., Any]]:
    """Yields ``update(kind, *args)`` for the model's hooks (``step_start``, ``result``,
    ``step_done``), driving a steps bar and a per-step agents bar; a no-op when disabled."""
    if not enabled:
        yield lambda *a, **k: None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
    ) as bar:
        steps = bar.add_task("steps", total=total_steps, completed=first_step, info="")
        agents = bar.add_task("agents", total=0, info="")

        def update(kind: str, *args: Any) -> None:
            if kind == "step_start":
                step, n, unit = args
                bar.reset(agents, total=n, description=f"step {step} {unit}", info="")
            elif kind == "turn":
                lines, still_open = args
                total = bar.tasks[agents].total or 0
                bar.update(agents, completed=total - still_open, info=f"+{lines} lines")
            elif kind == "result":
                _index, result = args
                failed = " (failed)" if result.error else ""
                bar.advance(agents)
                bar.update(agents, info=f"{result.latency_s:.1f}s{failed}")
            elif kind == "step_done":
                bar.advance(steps)

        yield update


def execute(model: RunModel, database: RunDatabase, show_progress: bool = True) -> str:
    """Run the model's remaining steps, recording each; returns the final status.

    Raises:
        RunError: A step in which no model call reached the model (the run is marked
            ``failed`` and resumes from its last recorded step).
    """
    with _progress(show_progress, model.scenario.steps, model.steps) as update:
        model.on_result = lambda i, r: update("result", i, r)
        model.on_turn = lambda lines, still_open: update("turn", lines, still_open)
        model.on_step_start = lambda step, n: update("step_start", step, n, model.unit)
        with recording_status(model, database):
            while model.running:
                model.step()
                update("step_done")
    return "completed"


@contextmanager
def recording_status(model: RunModel, database: RunDatabase) -> Iterator[None]:
    """Record how the steps run inside ends: ``completed``, ``interrupted`` or ``failed``
    (with the usage so far). Experiments drive several runs' steps inside one each.

    Raises:
        RunError: A step in which no model call reached the model.
    """
    # Imported here: the model's module brings Mesa, which commands like `--help` never need.
    from sandbox.recorded_model import StepFailed

    try:
        yield
    except KeyboardInterrupt:
        database.set_status(model.run_id, "interrupted", model.llm.usage())
        raise
    except StepFailed as exc:
        database.set_status(model.run_id, "failed", model.llm.usage())
        raise RunError(str(exc)) from None
    except Exception:
        database.set_status(model.run_id, "failed", model.llm.usage())
        raise
    database.set_status(model.run_id, "completed", model.llm.usage())


@dataclass
class PreparedRun:
    """A created run, ready to execute. The caller closes it with :meth:`close`."""

    model: RunModel
    database: RunDatabase
    target: str
    run_dir: Path

    def close(self) -> None:
        self.model.loop.run_until_complete(self.model.llm.aclose())
        self.model.loop.close()


def prepare_run(
    scenario_path: Path,
    options: RunOptions,
    llm_cli: dict[str, Any],
    config_file: Path | None = None,
    llm: LLMClient | None = None,
) -> PreparedRun:
    """Load the scenario, select the population, build the graph and record the new run.

    Raises:
        ScenarioError, PopulationError, ConfigError, DatabaseError: bad input, one line each.
    """
    check_out(options.out)
    scenario, personas, graph = load_inputs(scenario_path, options)
    client = llm or LLMClient(load_settings(config_file, **llm_overrides(scenario, llm_cli)))
    loop = preflight_loop(client)
    estimate = run_estimate(scenario, personas, graph, client)

    run_id = new_run_id(scenario.name)
    run_dir = options.out / run_id
    target = options.database or str(run_dir / RUN_DB)
    database = RunDatabase(target)
    base_dir = scenario_path.parent.resolve()
    setup = RunSetup(
        scenario, personas, graph, client, scenario.seed, run_id, database, loop, run_dir, base_dir
    )
    model = create_run(setup, scenario_path, estimate)
    return PreparedRun(model, database, target, run_dir)


def run_estimate(
    scenario: ScenarioBase, personas: list[PersonaRecord], graph: nx.Graph[int], client: LLMClient
) -> dict[str, Any]:
    """What the run will cost, predicted without calling a model (``sandbox estimate``)."""
    # Imported here: `sandbox --help` never needs the estimate's model machinery.
    from sandbox.estimate.run import estimate_cast
    from sandbox.estimate.tokens import counter_for

    backend = client.backend.name
    counter = counter_for(client.settings, backend)
    return estimate_cast(scenario, personas, graph, client.settings, counter, backend).model_dump()


def preflight_loop(client: LLMClient) -> asyncio.AbstractEventLoop:
    """The run's event loop, after the backend's pre-flight check passed on it (before any
    run folder or database row exists). The check runs on the run's own loop because the
    HTTP client's connections belong to the loop that opened them.

    Raises:
        ConfigError: The backend cannot work (bad base URL, no server, not a GGUF file).
    """
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(client.preflight())
    except BaseException:
        loop.run_until_complete(client.aclose())
        loop.close()
        raise
    return loop


def start_run(
    scenario_path: Path,
    options: RunOptions,
    llm_cli: dict[str, Any],
    config_file: Path | None = None,
    show_progress: bool = True,
    llm: LLMClient | None = None,
) -> RunOutcome:
    """Create a run from a scenario file and run it to the end."""
    prepared = prepare_run(scenario_path, options, llm_cli, config_file, llm)
    try:
        status = execute(prepared.model, prepared.database, show_progress)
    finally:
        prepared.close()
    return RunOutcome(prepared.model.run_id, prepared.run_dir, prepared.target, status)


def resume_run(
    database_ref: str | Path,
    llm_cli: dict[str, Any],
    config_file: Path | None = None,
    show_progress: bool = True,
    llm: LLMClient | None = None,
    out: Path = Path("runs"),
    switch_model: bool = False,
) -> RunOutcome:
    """Continue a run (the latest in ``database_ref``) from its last committed step, on the
    LLM configuration it recorded (:mod:`sandbox.run_llm`).

    Args:
        switch_model: Allow flags or ``config_file`` to move the run to another backend or
            model (recorded with the run); without it that is a ModelSwitchError.
    """
    check_out(out)
    database = RunDatabase(database_ref, must_exist=True)
    run = database.run()
    if run is None:
        raise RunError(f"{database_ref} holds no run")
    folder = run_folder(database_ref, run.id, out)
    if run.status == "completed":
        return RunOutcome(run.id, folder, str(database_ref), "completed")
    client = llm or client_for_resume(run, llm_cli, config_file)
    # Compared after the pre-flight check, which learns the model a server serves.
    loop = preflight_loop(client)
    try:
        check_model(database, run, client, switch_model)
        client.continue_usage(run.usage or {})
        model = rebuild_run(database, run, client, loop)
        status = execute(model, database, show_progress)
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()
    return RunOutcome(run.id, folder, str(database_ref), status)
