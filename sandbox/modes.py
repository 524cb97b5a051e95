"""The mode registry: everything that differs between run modes, in one table.

A run mode (``mode:`` in a scenario file) supplies its scenario class, how to build its Mesa
model for a new run and rebuild + restore it on resume, its extra agent columns in the run
database, its report (HTML page and terminal summary), its export samples, and what
``sandbox validate`` says about it. The runner, the report, the CLI and the export look the
mode up in :data:`MODES` and never branch on it. Each mode's pieces live in its own folder
(``sandbox/forecast/``, ``sandbox/npc/``); adding a mode is a new folder and one entry here
(see docs/modes.md).
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import jinja2
import networkx as nx
import yaml
from pydantic import Field, TypeAdapter
from rich.console import Console

from sandbox.archetypes import scenario as archetype_scenario
from sandbox.forecast import scenario as forecast_scenario
from sandbox.npc import scenario as npc_scenario
from sandbox.scenario import ScenarioBase

if TYPE_CHECKING:
    from personahub.llm import LLMClient, LLMResult
    from sandbox.estimate.fill import AnswerFill
    from sandbox.export.samples import Sample
    from sandbox.population import PersonaRecord
    from sandbox.rundb import AgentRow, RunDatabase, RunRow

DEFAULT_MODE = "forecast"
"""The mode of a scenario file without ``mode:``."""


class RunModel(Protocol):
    """What the runner needs of a mode's Mesa model (``mesa.Model`` gives ``steps``/``running``)."""

    run_id: str
    run_seed: int
    llm: LLMClient
    loop: asyncio.AbstractEventLoop
    unit: str  # what a step's progress bar counts ("agents", "conversations")
    steps: int
    running: bool
    # Progress hooks (see RecordedModel): the runner sets them all, each mode calls its own.
    on_step_start: Callable[[int, int], None] | None
    on_result: Callable[[int, LLMResult[Any]], None] | None
    on_turn: Callable[[int, int], None] | None

    @property
    def scenario(self) -> ScenarioBase: ...

    @property
    def by_node(self) -> Sequence[Any]:
        """The agents in graph-node order."""
        ...

    def step(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RunSetup:
    """What every mode's model is built from.

    Attributes:
        scenario: The effective scenario (of the mode's class).
        personas: One persona per agent; agent ``i`` sits on graph node ``i``.
        graph: The relationship graph over nodes ``0..n-1``.
        llm: The gateway client.
        seed: The run seed.
        run_id: The run's id in ``database``.
        database: Where steps are recorded; None for the estimate's dry run, which
            records nothing.
        loop: The event loop that drives the gateway (the caller owns it).
        folder: The run's folder (a mode may keep files there).
        base_dir: The folder the scenario's relative paths start from.
    """

    scenario: ScenarioBase
    personas: list[PersonaRecord]
    graph: nx.Graph[int]
    llm: LLMClient
    seed: int
    run_id: str
    database: RunDatabase | None
    loop: asyncio.AbstractEventLoop
    folder: Path | None = None
    base_dir: Path = Path(".")


@dataclass(frozen=True, slots=True)
class Mode:
    """One run mode.

    Attributes:
        name: The value of ``mode:`` in a scenario file.
        scenario: Its scenario class (``mode`` a ``Literal`` of ``name``).
        build: The model of a new run (any preparation, e.g. NPC profiles, included).
        rebuild: The model of a run being resumed, from its setup and stored agent rows.
        restore: Bring a rebuilt model to the end of the run's last committed step.
        agent_row: Columns of an agent's row beyond the common ones (``agents`` table).
        render_report: The run's report page (HTML) with the report's Jinja2 environment.
        print_summary: The run's key figures, printed to the console.
        export_role: The ``sandbox export --role`` whose samples this mode's runs give.
        samples: The run's export samples (``database``, ``run_id``).
        describe: The lines ``sandbox validate`` prints about a scenario of this mode.
        estimate: The mode's typical answers on a backend (by name), from which
            ``sandbox estimate`` predicts a run's tokens (:mod:`sandbox.estimate`).
        live: The run page's figures in ``sandbox serve`` (plain data: ``figures``,
            ``shares`` per step, and ``answers`` per agent with their ``categories``, what
            the graph is coloured by), from a read-only database.
        own_population: The mode builds its agents and graph itself in ``build`` (from the
            scenario, in files of the run folder) and ``rebuild``: the runner loads no personas,
            builds no NetworkX graph and writes no agent or edge rows (runs of a million
            agents, where an object or a row per agent costs more than the step).
    """

    name: str
    scenario: type[ScenarioBase]
    build: Callable[[RunSetup], RunModel]
    rebuild: Callable[[RunSetup, list[AgentRow]], RunModel]
    restore: Callable[[RunModel, RunDatabase, RunRow], None]
    agent_row: Callable[[Any], dict[str, Any]]
    render_report: Callable[[jinja2.Environment, RunDatabase, RunRow], str]
    print_summary: Callable[[RunDatabase, RunRow, Console], None]
    export_role: str
    samples: Callable[[RunDatabase, str], list[Sample]]
    describe: Callable[[Any], list[tuple[str, str]]]
    estimate: Callable[[str], AnswerFill]
    live: Callable[[RunDatabase, RunRow], dict[str, Any]]
    own_population: bool = False


def _lazy(module: str, name: str) -> Callable[..., Any]:
    """``module.name``, imported on its first call: `sandbox validate` and `--help` need the
    registry's scenario classes, not the models' and reports' libraries (mesa, pandas,
    matplotlib, openai), which take seconds to import."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__qualname__ = call.__name__ = name
    return call


MODES: dict[str, Mode] = {
    mode.name: mode
    for mode in (
        Mode(
            name="forecast",
            scenario=forecast_scenario.ForecastScenario,
            build=_lazy("sandbox.forecast.mode", "build"),
            rebuild=_lazy("sandbox.forecast.mode", "rebuild"),
            restore=_lazy("sandbox.forecast.mode", "restore"),
            agent_row=_lazy("sandbox.forecast.mode", "agent_row"),
            render_report=_lazy("sandbox.forecast.report", "render_report"),
            print_summary=_lazy("sandbox.forecast.report", "print_summary"),
            export_role="agent",
            samples=_lazy("sandbox.export.samples", "agent_samples"),
            describe=forecast_scenario.describe,
            estimate=_lazy("sandbox.forecast.estimate", "typical_answers"),
            live=_lazy("sandbox.forecast.live", "live_figures"),
        ),
        Mode(
            name="npc_world",
            scenario=npc_scenario.NPCWorldScenario,
            build=_lazy("sandbox.npc.mode", "build"),
            rebuild=_lazy("sandbox.npc.mode", "rebuild"),
            restore=_lazy("sandbox.npc.mode", "restore"),
            agent_row=_lazy("sandbox.npc.mode", "agent_row"),
            render_report=_lazy("sandbox.npc.report", "render_report"),
            print_summary=_lazy("sandbox.npc.report", "print_summary"),
            export_role="npc",
            samples=_lazy("sandbox.export.samples", "npc_samples"),
            describe=npc_scenario.describe,
            estimate=_lazy("sandbox.npc.estimate", "typical_answers"),
            live=_lazy("sandbox.npc.live", "live_figures"),
        ),
        Mode(
            name="archetypes",
            scenario=archetype_scenario.ArchetypeScenario,
            build=_lazy("sandbox.archetypes.mode", "build"),
            rebuild=_lazy("sandbox.archetypes.mode", "rebuild"),
            restore=_lazy("sandbox.archetypes.mode", "restore"),
            agent_row=_lazy("sandbox.archetypes.mode", "agent_row"),
            render_report=_lazy("sandbox.archetypes.report", "render_report"),
            print_summary=_lazy("sandbox.archetypes.report", "print_summary"),
            export_role="agent",
            samples=_lazy("sandbox.archetypes.report", "samples"),
            describe=archetype_scenario.describe,
            estimate=_lazy("sandbox.forecast.estimate", "typical_answers"),
            live=_lazy("sandbox.archetypes.report", "live_figures"),
            own_population=True,
        ),
    )
}
"""Every run mode by name, in the order ``--role all`` exports them."""


@functools.cache
def scenario_adapter() -> TypeAdapter[ScenarioBase]:
    """Validates scenario data as the union of every mode's scenario class, discriminated on
    ``mode`` (a field of another mode is an unknown field). Data needs ``mode`` set: see
    :data:`DEFAULT_MODE`."""
    members = tuple(mode.scenario for mode in MODES.values())
    union: Any = functools.reduce(operator.or_, members)
    adapter: TypeAdapter[ScenarioBase] = TypeAdapter(Annotated[union, Field(discriminator="mode")])
    return adapter


def mode_of(scenario: ScenarioBase) -> Mode:
    """The mode of a validated scenario."""
    return MODES[scenario.mode]


def mode_of_run(run: RunRow) -> Mode:
    """The mode of a recorded run, from its stored scenario."""
    stored = yaml.safe_load(run.scenario_yaml) or {}
    return MODES[str(stored.get("mode", DEFAULT_MODE))]
