"""Near-duplicate removal by embedding similarity (cosine >= threshold).

Kept items live in a usearch HNSW index (cosine metric). Items are processed in blocks
of at most ``block_size``: each block is first queried against the index (approximate
nearest neighbour over everything kept before), then compared exactly with the earlier
items of the same block through chunked matrix products (at most ``chunk_rows x
block_size`` floats at a time), and its kept items are added to the index. Memory is
therefore bounded by the index plus one block, never by ``n x n``.

Decisions follow the input order: an item is dropped when some item kept before it has
cosine >= threshold, so adding items in one batch or in many gives the same result (up to
the recall of the ANN search, which is near 1 at these settings).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np
from usearch.index import BatchMatches, Index, Matches

VectorSource = Callable[[Sequence[Hashable], Sequence[str]], np.ndarray]
"""(keys, texts) -> their vectors, e.g. a store's persisted ones
(:meth:`personahub.store.StoredVectors.vectors_for`)."""


def match_counts(matches: Matches | BatchMatches) -> np.ndarray:
    """Matches found per query row. One query row comes back from usearch as a flat
    ``Matches``, which has no ``counts``: all its keys belong to that row."""
    if isinstance(matches, BatchMatches):
        return np.asarray(matches.counts).reshape(-1)
    return np.asarray([len(matches.keys)])


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms


def earlier_neighbours(
    vectors: np.ndarray, threshold: float, chunk_rows: int = 512
) -> list[list[tuple[int, float]]]:
    """For each row i, the earlier rows j < i with cosine >= threshold (exact).

    Args:
        vectors: Unit-length rows.
        threshold: Cosine threshold.
        chunk_rows: Rows per matrix product (bounds memory to ``chunk_rows x n``).

    Returns:
        Per row, (j, cosine) pairs in increasing j.
    """
    n = len(vectors)
    found: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for start in range(0, n, chunk_rows):
        stop = min(n, start + chunk_rows)
        # Only columns before the chunk's last row can be "earlier".
        sims = vectors[start:stop] @ vectors[:stop].T
        rows, cols = np.nonzero(sims >= threshold)
        earlier = cols < rows + start
        for r, c in zip(rows[earlier].tolist(), cols[earlier].tolist(), strict=True):
            found[start + r].append((c, float(sims[r, c])))
    return found


class EmbeddingDeduper:
    """Incremental near-duplicate filter on sentence embeddings.

    Args:
        threshold: Cosine at or above which an item is a near-duplicate.
        embedder: Object with ``encode(texts) -> np.ndarray`` and ``dim``; the default
            MiniLM embedder is loaded when texts are first given.
        block_size: Items decided per block (bounds the exact in-block comparison).
        expansion_search: HNSW search depth (higher: better recall, slower).
        connectivity: HNSW graph degree (None: usearch default).
        dtype: Vector storage in the index (``f32`` keeps cosines exact enough near the
            threshold; ``f16`` halves the memory).
        threads: Threads that build the index; 1 (the default) builds the same graph on
            every run, so decisions are reproducible; 0 uses every core.
    """

    def __init__(
        self,
        threshold: float = 0.9,
        embedder: Any | None = None,
        block_size: int = 2048,
        expansion_search: int = 128,
        connectivity: int | None = None,
        dtype: str = "f32",
        threads: int = 1,
    ) -> None:
        self.threshold = threshold
        self.block_size = block_size
        self.threads = threads
        self._embedder = embedder
        self.dtype = dtype
        self.connectivity = connectivity
        self.expansion_search = expansion_search
        self.index: Index | None = None
        self._keys: list[Hashable] = []
        self._seen: set[Hashable] = set()
        self._dropped: dict[Hashable, Hashable] = {}

    def __len__(self) -> int:
        """Number of kept (indexed) items."""
        return len(self._keys)

    @property
    def embedder(self) -> Any:
        """The embedder, loaded on first use."""
        if self._embedder is None:
            from personahub.embeddings import get_embedder

            self._embedder = get_embedder()
        return self._embedder

    def _ensure_index(self, dim: int) -> Index:
        if self.index is None:
            self.index = Index(
                ndim=dim,
                metric="cos",
                dtype=self.dtype,
                connectivity=self.connectivity,
                expansion_search=self.expansion_search,
            )
        return self.index

    def add_batch(
        self,
        keys: Sequence[Hashable],
        items: Sequence[str] | np.ndarray,
        vectors: VectorSource | None = None,
    ) -> list[bool]:
        """Decide keep (True) or drop (False) for each item, in order, and index the kept.

        Args:
            keys: Unique identifiers of the items.
            items: Texts (embedded here) or an ``(n, dim)`` array of vectors.
            vectors: Where the vectors of texts come from instead of encoding them here.

        Returns:
            One flag per item.

        Raises:
            ValueError: If lengths differ or a key was already added.
        """
        if len(keys) != len(items):
            raise ValueError("keys and items differ in length")
        if len(set(keys)) != len(keys):
            raise ValueError("keys repeat within the batch")
        for key in keys:
            if key in self._seen:
                raise ValueError(f"key {key!r} was already added")
        decisions: list[bool] = []
        for start in range(0, len(keys), self.block_size):
            block_keys = keys[start : start + self.block_size]
            block = items[start : start + self.block_size]
            if not isinstance(block, np.ndarray):
                texts = list(block)
                block = vectors(block_keys, texts) if vectors else self.embedder.encode(texts)
            decisions.extend(self._add_block(list(block_keys), unit_rows(block)))
        return decisions

    def _add_block(self, keys: list[Hashable], vectors: np.ndarray) -> list[bool]:
        index = self._ensure_index(vectors.shape[1])
        keep = [True] * len(keys)
        # 1) Against everything kept in earlier blocks: approximate nearest neighbour.
        if len(index):
            matches = index.search(vectors, 1)
            # One query row comes back as a flat Matches without counts; make it a batch.
            nearest = np.asarray(matches.keys).reshape(len(keys), -1)[:, 0]
            distances = np.asarray(matches.distances, dtype=np.float64).reshape(len(keys), -1)
            counts = match_counts(matches)
            sims = 1.0 - distances[:, 0]
            for i in np.flatnonzero((counts > 0) & (sims >= self.threshold)).tolist():
                keep[i] = False
                self._dropped[keys[i]] = self._keys[int(nearest[i])]
        # 2) Within the block, exactly, in order: compare only with earlier kept items.
        survivors = [i for i in range(len(keys)) if keep[i]]
        neighbours = earlier_neighbours(vectors[survivors], self.threshold)
        for position, i in enumerate(survivors):
            kept_near = [(s, j) for j, s in neighbours[position] if keep[survivors[j]]]
            if kept_near:
                keep[i] = False
                self._dropped[keys[i]] = keys[survivors[max(kept_near)[1]]]
        # 3) Index what was kept.
        kept = [i for i in range(len(keys)) if keep[i]]
        if kept:
            first = len(self._keys)
            new_keys = np.arange(first, first + len(kept), dtype=np.uint64)
            index.add(new_keys, vectors[kept], threads=self.threads)
            self._keys.extend(keys[i] for i in kept)
        self._seen.update(keys)
        return keep

    def duplicates_of(self, key: Hashable) -> Hashable | None:
        """The kept item that ``key`` was dropped as a near-duplicate of (None if kept)."""
        return self._dropped.get(key)

    @property
    def dropped(self) -> dict[Hashable, Hashable]:
        """Dropped key -> kept key it duplicates."""
        return dict(self._dropped)
