"""A run in the run database: recording a new run (scenario, agents, graph) and rebuilding
the model of a recorded one from its last committed step (``resume``)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import networkx as nx
import yaml
from rich.console import Console

from personahub.llm import LLMClient
from personahub.urls import mask_url
from sandbox.graph import communities
from sandbox.modes import RunModel, RunSetup, mode_of
from sandbox.population import PersonaRecord
from sandbox.raking import rake
from sandbox.run_folders import RunError, run_folder
from sandbox.rundb import RunDatabase, RunRow
from sandbox.scenario import ScenarioBase
from sandbox.scenario_loader import parse_scenario

# Louvain communities are computed for graphs up to this many nodes unless a segment needs them.
COMMUNITY_LIMIT = 5000


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
