"""The estimate of a big run from a sample of its agents, scaled up.

Stepping the dry run costs about what the real run costs outside the model (prompts rendered,
answers validated, tokens counted), so on a big population the run-start estimate would
double the setup. Where a mode's calls grow with its agents (``AnswerFill.per_agent``: each
agent asks once per step it is active), :func:`sample_cast` takes a seeded sample of
:data:`SAMPLE_AGENTS` agents on a graph that keeps each sampled agent's number of
contacts, the sample's run is estimated as usual, and its figures are scaled by
population / sample. Word of mouth depends on how many contacts an agent hears from, which
the sample graph keeps; who in particular is a contact is redrawn inside the sample. An
event that reaches a fixed number of agents (``channel: seeded`` with ``k``) reaches as many
in the sample, so the calls it starts are overstated by the scale factor: the estimate errs
high there.
"""

from __future__ import annotations

import random

import networkx as nx

from sandbox.population import PersonaRecord

SAMPLE_AGENTS = 500
"""Agents stepped by the estimate of a bigger population whose calls grow with its agents."""


def sample_cast(
    personas: list[PersonaRecord], graph: nx.Graph[int], size: int, seed: int
) -> tuple[list[PersonaRecord], nx.Graph[int]]:
    """``size`` of the personas (seeded) and a graph over them (nodes ``0..size-1``) in which
    every sampled agent has as many contacts as in ``graph``, as far as the sample allows.

    The sample's own edges are kept; each agent then gets random partners among sampled
    agents still short of their degree until it has its degree or no partner is left.
    """
    rng = random.Random(seed)
    chosen = sorted(rng.sample(range(len(personas)), size))
    index = {node: i for i, node in enumerate(chosen)}
    sample: nx.Graph[int] = nx.Graph()
    sample.add_nodes_from(range(size))
    for u, v, data in graph.subgraph(chosen).edges(data=True):
        sample.add_edge(index[u], index[v], **data)
    want = {index[node]: graph.degree(node) for node in chosen}
    short = [i for i in range(size) if sample.degree(i) < want[i]]
    rng.shuffle(short)
    for node in short:
        partners = [
            j
            for j in short
            if j != node and sample.degree(j) < want[j] and not sample.has_edge(node, j)
        ]
        rng.shuffle(partners)
        for other in partners[: max(0, want[node] - sample.degree(node))]:
            # The relation of one of the node's own edges, so prompts name contacts alike.
            relation = next(iter(graph.adj[chosen[node]].values()), {})
            sample.add_edge(node, other, **relation)
    return [personas[node] for node in chosen], sample
