"""``mode: archetypes`` through the mode registry: build, rebuild and restore a run.

The mode builds its own agents and graph (``Mode.own_population``): from the scenario's
``agents`` marginals, or from the common population loader, into the columnar files of
:mod:`sandbox.archetypes.storage` in the run folder, never as per-agent database rows.
"""

from __future__ import annotations

import numpy as np

from sandbox.archetypes.model import ArchetypeModel
from sandbox.archetypes.network import CSRGraph, block_model, watts_strogatz
from sandbox.archetypes.population import AgentTable, from_marginals, from_personas
from sandbox.archetypes.scenario import ArchetypeScenario, BlockModel
from sandbox.archetypes.storage import AGENTS_FILE, GRAPH_FILE
from sandbox.modes import RunSetup
from sandbox.rundb import AgentRow, RunDatabase, RunRow
from sandbox.scenario import WattsStrogatz


def _table(scenario: ArchetypeScenario, setup: RunSetup) -> tuple[AgentTable, np.ndarray | None]:
    """The agents, and stored edges (pairs of agent indices) where the population has them."""
    if scenario.agents is not None:
        n = scenario.population.sample or scenario.agents.n
        rng = np.random.default_rng([setup.seed, 0xA6E])
        return from_marginals(n, scenario.agents.attributes, rng), None
    from sandbox.population import load_cast

    cast = load_cast(scenario.population, setup.seed, setup.base_dir)
    names = sorted(
        {*scenario.archetype.attributes, *scenario.segments}
        | (set(scenario.graph.by) if isinstance(scenario.graph, BlockModel) else set())
    )
    table = from_personas(
        [p.text for p in cast.personas], [p.attributes for p in cast.personas], names
    )
    edges = np.array([(s, d) for s, d, _, _ in cast.edges], dtype=np.int64).reshape(-1, 2)
    return table, edges


def _graph(
    scenario: ArchetypeScenario, table: AgentTable, edges: np.ndarray | None, seed: int
) -> CSRGraph:
    rng = np.random.default_rng([seed, 0x6AF])
    spec = scenario.graph
    if isinstance(spec, WattsStrogatz):
        return watts_strogatz(table.n, spec.k, spec.p, rng)
    if isinstance(spec, BlockModel):
        block = np.zeros(table.n, dtype=np.int64)
        for name in spec.by:
            block = block * len(table.labels[name]) + table.codes[name]
        return block_model(table.n, block, spec.degree, spec.within, rng)
    pairs = edges if edges is not None else np.zeros((0, 2), dtype=np.int64)
    return CSRGraph.from_edges(table.n, pairs[:, 0], pairs[:, 1])


def build(setup: RunSetup) -> ArchetypeModel:
    scenario = setup.scenario
    assert isinstance(scenario, ArchetypeScenario)
    table, edges = _table(scenario, setup)
    graph = _graph(scenario, table, edges, setup.seed)
    if setup.folder is not None:
        setup.folder.mkdir(parents=True, exist_ok=True)
        table.save(setup.folder / AGENTS_FILE)
        graph.save(setup.folder / GRAPH_FILE)
    return _model(setup, table, graph)


def _model(setup: RunSetup, table: AgentTable, graph: CSRGraph) -> ArchetypeModel:
    scenario = setup.scenario
    assert isinstance(scenario, ArchetypeScenario)
    return ArchetypeModel(
        scenario,
        table,
        graph,
        setup.llm,
        seed=setup.seed,
        run_id=setup.run_id,
        database=setup.database,
        loop=setup.loop,
        folder=setup.folder,
    )


def rebuild(setup: RunSetup, agents: list[AgentRow]) -> ArchetypeModel:
    assert setup.folder is not None
    table = AgentTable.load(setup.folder / AGENTS_FILE)
    graph = CSRGraph.load(setup.folder / GRAPH_FILE)
    return _model(setup, table, graph)


def restore(model: ArchetypeModel, database: RunDatabase, run: RunRow) -> None:
    model.restore_state(run.last_step)
    model.restore_run_state(
        run.last_step, run.rng_state or [], [m.metrics for m in database.step_metrics(run.id)]
    )


def agent_row(agent: object) -> dict[str, object]:
    return {}
