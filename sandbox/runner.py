"""Start, resume and finish runs: scenario + population + graph -> model -> run database.

A run lives in ``runs/<run-id>/`` (``run.db``, ``report.html``). Its database holds the
effective scenario (CLI overrides applied), the agents, the graph and the LLM settings (never
the key), so ``resume`` needs nothing but the run folder.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import networkx as nx
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from personahub.llm import LLMClient, load_settings
from personahub.urls import mask_url
from sandbox.coverage import coverage_warnings
from sandbox.graph import build_graph, communities
from sandbox.modes import RunModel, RunSetup, mode_of
from sandbox.population import PersonaRecord, load_cast, source_problems
from sandbox.raking import rake
from sandbox.run_llm import check_model, client_for_resume
from sandbox.rundb import RunDatabase, RunRow
from sandbox.scenario import ScenarioBase
from sandbox.scenario_loader import (
    ScenarioError,
    load_scenario,
    parse_scenario,
    validate_scenario,
)

RUN_DB = "run.db"


class RunError(RuntimeError):
    """A run that cannot start or resume; one line."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Command-line overrides of a scenario.

    Attributes:
        agents: Number of agents (overrides ``population.sample``).
        steps: Number of steps.
        seed: Run seed.
        out: Folder that holds run folders.
        database: A SQLAlchemy URL for the run database instead of ``<run>/run.db``.
        population: A persona source (``sample``, a file, a store or a database URL) instead of
            the scenario's ``population.source``; a relative path is taken from the current
            folder, as a user typing it expects.
    """

    agents: int | None = None
    steps: int | None = None
    seed: int | None = None
    out: Path = Path("runs")
    database: str | None = None
    population: str | None = None


@dataclass(frozen=True, slots=True)
class RunOutcome:
    run_id: str
    run_dir: Path
    database: str
    status: str


def new_run_id(name: str) -> str:
    return f"{name}-{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _population_source(source: str) -> str:
    """``--population`` as the scenario's ``population.source``: URLs and ``sample`` as given,
    paths made absolute (scenario paths are relative to the scenario file, flags to the shell's
    folder)."""
    if source == "sample" or "://" in source:
        return source
    return str(Path(source).expanduser().resolve())


def effective_scenario(scenario: ScenarioBase, options: RunOptions) -> ScenarioBase:
    """The scenario with ``--agents/--steps/--seed/--population`` applied, validated again.

    Events after a shortened horizon simply never happen: ``--steps 2`` is a shorter run.
    ``--population`` replaces the source; the scenario's ``text_field`` and ``edges`` belonged
    to its own source file and are dropped with it, its ``filter`` still applies.
    """
    for flag, value in (("--agents", options.agents), ("--steps", options.steps)):
        if value is not None and value < 1:
            raise RunError(f"{flag} {value}: expected 1 or more")
    data = scenario.model_dump(mode="json", exclude_none=True)
    if options.steps is not None:
        try:
            scenario.cut(data, options.steps)
        except ValueError as exc:
            raise RunError(f"--steps {options.steps}: {exc}") from None
    if options.seed is not None:
        data["seed"] = options.seed
    if options.agents is not None:
        data["population"]["sample"] = options.agents
    if options.population is not None:
        population = data["population"]
        population["source"] = _population_source(options.population)
        population.pop("text_field", None)
        population.pop("edges", None)
    if data == scenario.model_dump(mode="json", exclude_none=True):
        return scenario
    flags = "--agents/--steps/--seed/--population"
    try:
        changed = validate_scenario(data, Path(flags))
    except ScenarioError as exc:
        raise ScenarioError(
            [p.replace(f"{flags}:1: ", f"{flags}: ") for p in exc.problems]
        ) from None
    if options.population is not None:
        problems = source_problems(changed.population, Path.cwd())
        if problems:
            raise RunError(f"--population {options.population}: {problems[0][1]}")
    return changed


def load_inputs(
    scenario_path: Path, options: RunOptions
) -> tuple[ScenarioBase, list[PersonaRecord], nx.Graph[int]]:
    """The effective scenario, its population and its graph: what a run (or its estimate)
    is made of. A note about the population (fewer personas than asked) goes to stderr."""
    scenario = effective_scenario(load_scenario(scenario_path), options)
    if mode_of(scenario).own_population:  # built by the mode itself, in columns
        return scenario, [], nx.Graph()
    cast = load_cast(
        scenario.population, scenario.seed, scenario_path.parent.resolve(), options.agents
    )
    if cast.note:
        Console(stderr=True).print(f"note: {cast.note}", highlight=False, soft_wrap=True)
    # Before the first step: a target or segment matching nobody is otherwise silent.
    for line in coverage_warnings(scenario, cast.personas):
        Console(stderr=True).print(f"warning: {line}", highlight=False, soft_wrap=True)
    return scenario, cast.personas, build_graph(scenario.graph, cast, scenario.seed)


def llm_overrides(scenario: ScenarioBase, cli: dict[str, Any]) -> dict[str, Any]:
    """Settings overrides of a run: the scenario's ``llm`` section, then the flags."""
    merged = {"backend": scenario.llm.backend, "model": scenario.llm.model}
    merged.update({k: v for k, v in cli.items() if v is not None})
    return {k: v for k, v in merged.items() if v is not None}


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


def create_run(
    setup: RunSetup, scenario_path: Path, estimate: dict[str, Any] | None = None
) -> RunModel:
    """Build the model of a new run and record the run (with its cost ``estimate``), its
    agents and its graph."""
    scenario, client, database = setup.scenario, setup.llm, setup.database
    assert database is not None, "a run is recorded in a database"
    scenario_yaml = yaml.safe_dump(_recordable(scenario), sort_keys=False, allow_unicode=True)
    model = mode_of(scenario).build(setup)
    run = RunRow(
        id=setup.run_id,
        name=scenario.name,
        scenario_path=str(scenario_path.resolve()),
        scenario_yaml=scenario_yaml,
        scenario_hash=hashlib.sha256(scenario_yaml.encode()).hexdigest()[:16],
        config_hash=hashlib.sha256(
            json.dumps([scenario_yaml, client.describe()], sort_keys=True).encode()
        ).hexdigest()[:16],
        seed=setup.seed,
        backend=client.backend.name,
        model=client.model,
        llm_config=client.settings.recorded(),
        steps_total=scenario.steps,
        estimate=estimate,
    )
    weights = _raking_weights(scenario, model)
    database.create_run(
        run,
        _agent_rows(model, setup.graph, setup.run_id, weights),
        _edge_rows(model, setup.graph, setup.run_id),
    )
    return model


def _recordable(scenario: ScenarioBase) -> dict[str, Any]:
    """The scenario as the run database keeps it: a population database URL loses its password
    (resume reads the agents from the run database, never the source again)."""
    data = scenario.model_dump(mode="json", exclude_none=True)
    data["population"]["source"] = mask_url(data["population"]["source"])
    return data


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


def check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out}: is a file; expected the folder that holds run folders")


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


COMMUNITY_LIMIT = 5000


def _raking_weights(scenario: ScenarioBase, model: RunModel) -> list[float | None]:
    """Each agent's raking weight (``population.match``), None for all without targets;
    what keeps the weights from fitting is printed as a warning."""
    if not scenario.population.match:
        return [None] * len(model.by_node)
    raking = rake([a.persona.attributes for a in model.by_node], scenario.population.match)
    for line in raking.warnings():
        Console(stderr=True).print(f"warning: {line}", highlight=False, soft_wrap=True)
    return [float(w) for w in raking.weights]


def _agent_rows(
    model: RunModel, graph: nx.Graph[int], run_id: str, weights: list[float | None]
) -> list[dict[str, Any]]:
    # Louvain takes seconds per 10k nodes: on big graphs only when a segment asks for it.
    wanted = model.scenario.wants_communities or graph.number_of_nodes() <= COMMUNITY_LIMIT
    community = communities(graph, model.run_seed) if wanted else {}
    extra_columns = mode_of(model.scenario).agent_row
    # Every row names every column (one multi-row insert): the mode's extras override these.
    return [
        {
            "run_id": run_id,
            "agent_id": agent.unique_id,
            "persona_id": agent.persona.persona_id,
            "persona": agent.persona.text,
            "attributes": agent.persona.attributes,
            "community": community.get(node, 0),
            "degree": graph.degree(node),
            "system_prompt": "",
            "profile": {},
            "weight": weights[node],
            **extra_columns(agent),
        }
        for node, agent in enumerate(model.by_node)
    ]


def _edge_rows(model: RunModel, graph: nx.Graph[int], run_id: str) -> list[dict[str, Any]]:
    ids = [a.unique_id for a in model.by_node]
    return [
        {
            "run_id": run_id,
            "src": ids[u],
            "dst": ids[v],
            "relation": d.get("relation", ""),
            "strength": float(d.get("strength", 1.0)),
        }
        for u, v, d in graph.edges(data=True)
    ]


def locate_run(ref: str | Path, out: Path = Path("runs")) -> str:
    """The run database for a run folder, a ``run.db`` path, a run id under ``out``, or a
    database URL (``--database`` runs; the latest run in it)."""
    if "://" in str(ref):
        return str(ref)
    for candidate in (Path(ref), out / str(ref)):
        if candidate.is_file():
            return str(candidate)
        if (candidate / RUN_DB).is_file():
            return str(candidate / RUN_DB)
    raise RunError(f"no run found at {ref} (looked for {Path(ref) / RUN_DB} and {out / str(ref)})")


def run_folder(database: str | Path, run_id: str, out: Path = Path("runs")) -> Path:
    """Where a run's report goes: beside its ``run.db``, or ``out/<run-id>`` for a URL."""
    return out / run_id if "://" in str(database) else Path(database).parent


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


def rebuild_run(
    database: RunDatabase, run: RunRow, client: LLMClient, loop: asyncio.AbstractEventLoop
) -> RunModel:
    """The model of a recorded run, brought to the end of its last committed step, with the
    run marked ``running`` again.

    Raises:
        RunError: The stored agents do not match the rebuilt model.
    """
    scenario = parse_scenario(run.scenario_yaml, Path(run.scenario_path or "run.db"))
    agents = database.agents(run.id)
    node_of = {row.agent_id: node for node, row in enumerate(agents)}
    personas = [PersonaRecord(r.persona_id, r.persona, dict(r.attributes)) for r in agents]
    graph: nx.Graph[int] = nx.Graph()
    graph.add_nodes_from(range(len(agents)))
    for edge in database.edges(run.id):
        graph.add_edge(
            node_of[edge.src], node_of[edge.dst], relation=edge.relation, strength=edge.strength
        )
    mode = mode_of(scenario)
    base_dir = Path(run.scenario_path).parent if run.scenario_path else Path(".")
    folder = run_folder(database.target, run.id)
    setup = RunSetup(
        scenario, personas, graph, client, run.seed, run.id, database, loop, folder, base_dir
    )
    model = mode.rebuild(setup, agents)
    if [a.unique_id for a in model.by_node] != [r.agent_id for r in agents]:
        raise RunError("agent ids in the run database do not match a rebuilt model")
    if run.last_step >= 0:
        mode.restore(model, database, run)
    database.set_status(run.id, "running")
    return model
