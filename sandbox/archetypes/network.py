"""The relationship graph at a million agents: compressed sparse rows (CSR), not NetworkX.

A NetworkX graph costs several hundred bytes per edge (a dict per node and per edge); five
million edges would not fit this machine's memory next to anything else. Here the graph is two
integer arrays: ``indptr`` (n + 1) and ``indices`` (2 × edges, both directions), about 45 MB
for 5M edges. Stepping only needs "sum this per-agent value over each agent's neighbours",
which is one gather and one ``bincount``. :meth:`CSRGraph.to_networkx` gives users the NetworkX
graph they know, for all agents or a sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import numpy as np


@dataclass(frozen=True)
class CSRGraph:
    """An undirected simple graph over nodes ``0..n-1``.

    Attributes:
        indptr: Row offsets; the neighbours of node ``v`` are ``indices[indptr[v]:indptr[v+1]]``.
        indices: Neighbour ids, sorted within each row.
    """

    indptr: np.ndarray
    indices: np.ndarray
    _rows: list[np.ndarray] = field(default_factory=list, repr=False, compare=False)

    @property
    def n(self) -> int:
        return len(self.indptr) - 1

    @property
    def n_edges(self) -> int:
        return len(self.indices) // 2

    def degree(self) -> np.ndarray:
        return np.diff(self.indptr)

    @property
    def rows(self) -> np.ndarray:
        """The row (receiving node) of every entry of ``indices``, built once."""
        if not self._rows:
            self._rows.append(np.repeat(np.arange(self.n, dtype=np.int32), self.degree()))
        return self._rows[0]

    @classmethod
    def from_edges(cls, n: int, src: np.ndarray, dst: np.ndarray) -> CSRGraph:
        """The simple undirected graph of the given edges: self-loops and repeats dropped."""
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        keep = src != dst
        a = np.concatenate([src[keep], dst[keep]])
        b = np.concatenate([dst[keep], src[keep]])
        keys = np.unique(a * n + b)  # sorted by row, then neighbour
        rows, cols = np.divmod(keys, n)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
        return cls(indptr, cols.astype(np.int32))

    def neighbour_sum(self, values: np.ndarray) -> np.ndarray:
        """For every node, the sum of ``values`` (one per node) over its neighbours."""
        return np.bincount(self.rows, weights=values[self.indices], minlength=self.n)

    def neighbour_counts(self, senders: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
        """``(n, k)`` counts: for every node, how many neighbours in ``senders`` (a mask) carry
        each label ``0..k-1``."""
        entries = senders[self.indices]
        rows = self.rows[entries].astype(np.int64)
        flat = rows * k + labels[self.indices[entries]]
        return np.bincount(flat, minlength=self.n * k).reshape(self.n, k)

    def to_networkx(self, nodes: np.ndarray | None = None) -> nx.Graph[int]:
        """The graph (or the subgraph induced by ``nodes``) as NetworkX."""
        graph: nx.Graph[int] = nx.Graph()
        chosen = np.arange(self.n) if nodes is None else np.asarray(nodes)
        graph.add_nodes_from(int(v) for v in chosen)
        inside = np.zeros(self.n, dtype=bool)
        inside[chosen] = True
        mask = inside[self.rows] & inside[self.indices] & (self.rows < self.indices)
        graph.add_edges_from(
            zip(self.rows[mask].tolist(), self.indices[mask].tolist(), strict=True)
        )
        return graph

    @classmethod
    def from_networkx(cls, graph: nx.Graph[int]) -> CSRGraph:
        edges = np.array(list(graph.edges), dtype=np.int64).reshape(-1, 2)
        return cls.from_edges(graph.number_of_nodes(), edges[:, 0], edges[:, 1])

    def save(self, path: Path) -> None:
        np.savez(path, indptr=self.indptr, indices=self.indices)

    @classmethod
    def load(cls, path: Path) -> CSRGraph:
        with np.load(path) as data:
            return cls(data["indptr"], data["indices"])


def watts_strogatz(n: int, k: int, p: float, rng: np.random.Generator) -> CSRGraph:
    """A small-world graph: a ring where each node links to its ``k // 2`` next nodes, each link
    rewired to a random node with probability ``p``. Vectorised; a rewired link that lands on
    a self-loop or an existing link is dropped rather than redrawn, so the graph has slightly
    fewer than ``n * k / 2`` edges (about ``p / n`` of them at this size: none to speak of)."""
    half = max(1, k // 2)
    src = np.repeat(np.arange(n, dtype=np.int64), half)
    dst = (src + np.tile(np.arange(1, half + 1, dtype=np.int64), n)) % n
    rewire = rng.random(len(dst)) < p
    dst[rewire] = rng.integers(0, n, int(rewire.sum()))
    return CSRGraph.from_edges(n, src, dst)


def block_model(
    n: int, blocks: np.ndarray, degree: float, within: float, rng: np.random.Generator
) -> CSRGraph:
    """A stochastic block model by expected degree: each node draws about ``degree / 2`` links,
    a share ``within`` of them to random members of its own block (e.g. its archetype's
    attributes), the rest to anyone. ``blocks`` gives each node's block id."""
    per_node = max(1, round(degree / 2))
    src = np.repeat(np.arange(n, dtype=np.int64), per_node)
    dst = rng.integers(0, n, len(src))
    same = rng.random(len(src)) < within
    order = np.argsort(blocks, kind="stable")
    sorted_blocks = blocks[order]
    starts = np.searchsorted(sorted_blocks, blocks[src[same]], side="left")
    ends = np.searchsorted(sorted_blocks, blocks[src[same]], side="right")
    dst[same] = order[starts + (rng.random(int(same.sum())) * (ends - starts)).astype(np.int64)]
    return CSRGraph.from_edges(n, src, dst)
