"""The run page's relationship graph: a fixed layout, coloured anew at every step.

Up to :data:`GRAPH_NODES` agents are drawn one dot each. A larger graph is drawn aggregated by
community (one dot per community, sized by its members, coloured by its most common answer)
when it has between 2 and :data:`GRAPH_NODES` communities, and otherwise as a seeded sample of
:data:`GRAPH_NODES` agents with the edges among them. The page states which one it shows.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import networkx as nx

from sandbox.rundb import AgentRow, EdgeRow

GRAPH_NODES = 300
MAX_EDGES = 1500
CANVAS = 1000


@dataclass(frozen=True, slots=True)
class GraphLayout:
    """Dots (each an agent or a community's members) with positions, and the edges drawn."""

    members: list[list[int]]
    positions: list[tuple[int, int]]
    edges: list[tuple[int, int]]
    note: str
    aggregated: bool


def _positions(graph: nx.Graph[int], seed: int) -> list[tuple[int, int]]:
    layout = nx.spring_layout(graph, seed=seed, iterations=60) if len(graph) else {}
    margin = 40
    span = CANVAS - 2 * margin
    return [
        (
            int(margin + (layout[n][0] + 1) / 2 * span),
            int(margin + (layout[n][1] + 1) / 2 * span),
        )
        for n in range(len(graph))
    ]


def layout(agents: list[AgentRow], edges: list[EdgeRow], seed: int) -> GraphLayout:
    """The layout of a run's graph (see the module docstring for which one)."""
    communities = sorted({a.community for a in agents})
    n = len(agents)
    if n <= GRAPH_NODES or not 2 <= len(communities) <= GRAPH_NODES:
        chosen = agents if n <= GRAPH_NODES else random.Random(seed).sample(agents, GRAPH_NODES)
        chosen = sorted(chosen, key=lambda a: a.agent_id)
        index = {a.agent_id: i for i, a in enumerate(chosen)}
        pairs: set[tuple[int, int]] = {
            (min(index[e.src], index[e.dst]), max(index[e.src], index[e.dst]))
            for e in edges
            if e.src in index and e.dst in index and e.src != e.dst
        }
        note = (
            f"all {n:,} agents"
            if n <= GRAPH_NODES
            else f"a random sample of {GRAPH_NODES} of {n:,} agents, with the edges among them"
        )
        members = [[a.agent_id] for a in chosen]
        aggregated = False
    else:
        slot = {c: i for i, c in enumerate(communities)}
        members = [[] for _ in communities]
        of = {}
        for a in agents:
            members[slot[a.community]].append(a.agent_id)
            of[a.agent_id] = slot[a.community]
        weight = Counter(
            (min(of[e.src], of[e.dst]), max(of[e.src], of[e.dst]))
            for e in edges
            if e.src in of and e.dst in of and of[e.src] != of[e.dst]
        )
        pairs = {pair for pair, _ in weight.most_common(MAX_EDGES)}
        note = f"{n:,} agents aggregated by community: one dot per community ({len(members)})"
        aggregated = True
    graph: nx.Graph[int] = nx.Graph()
    graph.add_nodes_from(range(len(members)))
    graph.add_edges_from(pairs)
    kept = sorted(pairs)[:MAX_EDGES]
    return GraphLayout(members, _positions(graph, seed), kept, note, aggregated)


def coloured(view: GraphLayout, answers: dict[int, str], categories: list[str]) -> dict[str, Any]:
    """The graph as the page draws it: each dot's place, size, colour (index into
    ``categories``, -1 for none) and tooltip."""
    dots = []
    for ids, (x, y) in zip(view.members, view.positions, strict=True):
        counts = Counter(answers[i] for i in ids if i in answers)
        top, count = counts.most_common(1)[0] if counts else (None, 0)
        colour = categories.index(top) if top in categories else -1
        if view.aggregated:
            share = f"{top}: {count / len(ids):.0%}" if top is not None else "no answers yet"
            title = f"community of {len(ids)} agents; most common answer {share}"
            radius = min(40, 4 + int(len(ids) ** 0.5))
        else:
            title = f"agent {ids[0]}: {top if top is not None else 'no answer yet'}"
            radius = 6
        dots.append({"x": x, "y": y, "r": radius, "c": colour, "title": title,
                     "agent": None if view.aggregated else ids[0]})  # fmt: skip
    return {"note": view.note, "dots": dots, "edges": view.edges, "categories": categories}
