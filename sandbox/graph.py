"""The relationship graph: stored persona edges or a generator, as a NetworkX graph.

Nodes are agent indices 0..n-1. Every edge carries a ``relation`` label and a ``strength``
(tie strength in (0, 1]), which decide whose posts an agent sees first.
"""

from __future__ import annotations

import random

import networkx as nx
import numpy as np

from sandbox.population import Cast
from sandbox.scenario import BarabasiAlbert, Graph, Homophily, StoredEdges, WattsStrogatz


def build_graph(spec: Graph, cast: Cast, seed: int) -> nx.Graph[int]:
    """Build the graph a scenario asks for over the cast's personas."""
    n = len(cast.personas)
    rng = random.Random(seed)
    graph: nx.Graph[int] = nx.Graph()
    graph.add_nodes_from(range(n))
    if isinstance(spec, StoredEdges):
        for src, dst, relation, strength in cast.edges:
            if not graph.has_edge(src, dst):
                graph.add_edge(src, dst, relation=relation, strength=strength)
        if spec.connect_isolated and n > 1:
            for node in [v for v in graph.nodes if graph.degree(v) == 0]:
                other = rng.choice([v for v in range(n) if v != node])
                graph.add_edge(node, other, relation=spec.relation, strength=0.3)
        return graph
    if isinstance(spec, WattsStrogatz):
        k = max(1, min(spec.k, n - 1))
        generated = nx.watts_strogatz_graph(n, k, spec.p, seed=seed) if n > 2 else None
    elif isinstance(spec, BarabasiAlbert):
        generated = nx.barabasi_albert_graph(n, min(spec.m, n - 1), seed=seed) if n > 1 else None
    elif isinstance(spec, Homophily):
        generated = homophily_graph([p.text for p in cast.personas], spec.k, spec.p, seed)
    else:  # pragma: no cover - the schema admits no other type
        raise ValueError(f"unknown graph type {spec!r}")
    if generated is not None:
        graph.add_edges_from(generated.edges, relation=spec.relation, strength=0.5)
    return graph


def homophily_graph(
    texts: list[str], k: int, p: float, seed: int, chunk: int = 1024
) -> nx.Graph[int]:
    """Link each persona to its ``k`` most similar others (MiniLM cosine); rewire a share ``p``.

    Similarities are computed in row chunks, so memory stays ``chunk × n``, not ``n × n``.
    """
    from personahub.embeddings import get_embedder

    n = len(texts)
    graph: nx.Graph[int] = nx.Graph()
    graph.add_nodes_from(range(n))
    if n < 2:
        return graph
    k = min(k, n - 1)
    vectors = get_embedder().encode(texts)
    rng = random.Random(seed)
    for start in range(0, n, chunk):
        sims = vectors[start : start + chunk] @ vectors.T
        for row, node in enumerate(range(start, min(start + chunk, n))):
            sims[row, node] = -np.inf
            nearest = np.argpartition(-sims[row], k - 1)[:k]
            for other in sorted(int(v) for v in nearest):
                if rng.random() < p:
                    other = rng.choice([v for v in range(n) if v != node])
                graph.add_edge(node, other)
    return graph


def communities(graph: nx.Graph[int], seed: int) -> dict[int, int]:
    """Community index per node (Louvain), largest community first."""
    if graph.number_of_edges() == 0:
        return dict.fromkeys(graph.nodes, 0)
    found = nx.community.louvain_communities(graph, seed=seed)
    ordered = sorted(found, key=lambda c: (-len(c), min(c)))
    return {node: i for i, members in enumerate(ordered) for node in members}
