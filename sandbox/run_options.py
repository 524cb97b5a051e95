"""A run's inputs: the scenario with command-line overrides applied, its population and graph,
and the LLM settings overrides (``sandbox run``, ``estimate``, ``experiment``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
from rich.console import Console

from sandbox.coverage import coverage_warnings
from sandbox.graph import build_graph
from sandbox.modes import mode_of
from sandbox.population import PersonaRecord, load_cast, source_problems
from sandbox.run_folders import RunError
from sandbox.scenario import ScenarioBase
from sandbox.scenario_loader import ScenarioError, load_scenario, validate_scenario


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
