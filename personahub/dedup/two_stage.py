"""Two-stage semantic dedup: cheap static vectors find candidates, MiniLM decides.

A static embedding model (one vector per token, averaged; :mod:`personahub.dedup.static`)
embeds every text in microseconds. Its cosines find, through a usearch HNSW index of the
kept items and an exact comparison inside each block, the earlier kept items that *might*
be near-duplicates: those at or above a looser threshold (``candidate_threshold``). Only
items with such a candidate are embedded with the real model, and only candidate pairs are
re-scored, at the real threshold (0.9). An item without a candidate is kept unembedded.

The decision rule is the full pass's (:class:`~personahub.dedup.embedding.EmbeddingDeduper`):
an item is dropped when an earlier *kept* item has MiniLM cosine >= threshold. So the
decisions equal a full MiniLM pass whenever every such pair is a candidate; the candidate
threshold is set so that the static model's cosine of a MiniLM near-duplicate pair stays
above it (on the benchmark corpus the lowest is 0.72 against the default 0.7; see
docs/embeddings.md).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
from usearch.index import Index

from personahub.dedup.embedding import VectorSource, earlier_neighbours, match_counts, unit_rows


class TwoStageDeduper:
    """Incremental near-duplicate filter: static candidates, re-scored with MiniLM.

    Args:
        threshold: MiniLM cosine at or above which an item is a near-duplicate.
        embedder: The real embedder (default MiniLM, loaded when first needed).
        candidate_threshold: Static cosine at or above which a pair is re-scored.
        static: Static embedder (``encode(texts) -> np.ndarray``, ``dim``).
        block_size: Items decided per block.
        neighbours: Kept items the index returns per query (candidates among them).
        expansion_search: HNSW search depth.
    """

    def __init__(
        self,
        threshold: float = 0.9,
        embedder: Any | None = None,
        candidate_threshold: float = 0.7,
        static: Any | None = None,
        block_size: int = 2048,
        neighbours: int = 16,
        expansion_search: int = 128,
    ) -> None:
        self.threshold = threshold
        self.candidate_threshold = candidate_threshold
        # float32 cosines of a pair right at the threshold may round either way.
        self._low = candidate_threshold - 1e-6
        self.block_size = block_size
        self.neighbours = neighbours
        self.expansion_search = expansion_search
        self._static = static
        self._embedder = embedder
        self.index: Index | None = None
        self._keys: list[Hashable] = []  # kept keys, by index label
        self._texts: list[str] = []  # kept texts, by index label (embedded when first needed)
        self._full: dict[int, np.ndarray] = {}  # index label -> real vector, once computed
        self._seen: set[Hashable] = set()
        self._dropped: dict[Hashable, Hashable] = {}
        self.encoded = 0
        """Texts embedded with the real model (the rest needed only static vectors)."""

    def __len__(self) -> int:
        """Number of kept (indexed) items."""
        return len(self._keys)

    @property
    def static(self) -> Any:
        """The static embedder, made on first use."""
        if self._static is None:
            from personahub.dedup.static import get_static_embedder

            self._static = get_static_embedder()
        return self._static

    @property
    def embedder(self) -> Any:
        """The real embedder, loaded on first use."""
        if self._embedder is None:
            from personahub.embeddings import get_embedder

            self._embedder = get_embedder()
        return self._embedder

    def add_batch(
        self,
        keys: Sequence[Hashable],
        texts: Sequence[str],
        vectors: VectorSource | None = None,
    ) -> list[bool]:
        """Decide keep (True) or drop (False) for each text, in order, and index the kept.

        Args:
            keys: Unique identifiers of the texts.
            texts: The texts.
            vectors: Where real vectors come from instead of the embedder (e.g. a store's
                persisted ones); asked only for texts that have a candidate.

        Returns:
            One flag per text.

        Raises:
            ValueError: If lengths differ or a key was already added.
        """
        if len(keys) != len(texts):
            raise ValueError("keys and texts differ in length")
        if len(set(keys)) != len(keys) or any(k in self._seen for k in keys):
            raise ValueError("a key repeats or was already added")
        decisions: list[bool] = []
        for start in range(0, len(keys), self.block_size):
            block_keys = list(keys[start : start + self.block_size])
            block_texts = list(texts[start : start + self.block_size])
            decisions.extend(self._add_block(block_keys, block_texts, vectors))
        return decisions

    def _real(
        self, keys: list[Hashable], texts: list[str], vectors: VectorSource | None
    ) -> np.ndarray:
        self.encoded += len(texts)
        found = vectors(keys, texts) if vectors else self.embedder.encode(texts)
        return unit_rows(np.asarray(found))

    def _index_candidates(self, static: np.ndarray) -> list[list[int]]:
        """Per row, the index labels of kept items at or above the candidate threshold."""
        if self.index is None or not len(self.index):
            return [[] for _ in range(len(static))]
        matches = self.index.search(static, min(self.neighbours, len(self.index)))
        labels = np.asarray(matches.keys).reshape(len(static), -1)
        sims = 1.0 - np.asarray(matches.distances, dtype=np.float64).reshape(len(static), -1)
        counts = match_counts(matches).tolist()
        return [
            [int(j) for j, s in zip(labels[i, :c], sims[i, :c], strict=True) if s >= self._low]
            for i, c in enumerate(counts)
        ]

    def _add_block(
        self, keys: list[Hashable], texts: list[str], vectors: VectorSource | None
    ) -> list[bool]:
        static = unit_rows(self.static.encode(texts))
        from_index = self._index_candidates(static)
        in_block = [[j for j, _ in row] for row in earlier_neighbours(static, self._low)]
        # Real vectors: every text with a candidate, and its in-block candidates.
        need = {i for i in range(len(keys)) if from_index[i] or in_block[i]}
        need |= {j for i in need for j in in_block[i]}
        order = sorted(need)
        real: dict[int, np.ndarray] = {}
        if order:
            rows = self._real([keys[i] for i in order], [texts[i] for i in order], vectors)
            real = dict(zip(order, rows, strict=True))
        # Items kept in earlier blocks without a candidate then are embedded only now.
        late = sorted({j for row in from_index for j in row if j not in self._full})
        if late:
            rows = self._real(
                [self._keys[j] for j in late], [self._texts[j] for j in late], vectors
            )
            self._full.update(zip(late, rows, strict=True))
        keep = [True] * len(keys)
        for i in order:
            scores = [(float(real[i] @ self._full[j]), self._keys[j]) for j in from_index[i]]
            scores += [(float(real[i] @ real[j]), keys[j]) for j in in_block[i] if keep[j]]
            best = max(scores, default=None, key=lambda pair: pair[0])
            if best is not None and best[0] >= self.threshold:
                keep[i] = False
                self._dropped[keys[i]] = best[1]
        self._index_kept(keys, texts, static, real, keep)
        self._seen.update(keys)
        return keep

    def _index_kept(
        self,
        keys: list[Hashable],
        texts: list[str],
        static: np.ndarray,
        real: dict[int, np.ndarray],
        keep: list[bool],
    ) -> None:
        kept = [i for i in range(len(keys)) if keep[i]]
        if not kept:
            return
        if self.index is None:
            self.index = Index(
                ndim=static.shape[1], metric="cos", dtype="f32",
                expansion_search=self.expansion_search,
            )  # fmt: skip
        first = len(self._keys)
        # One thread builds the same graph on every run: reproducible decisions.
        self.index.add(
            np.arange(first, first + len(kept), dtype=np.uint64), static[kept], threads=1
        )
        for label, i in enumerate(kept, start=first):
            if i in real:
                self._full[label] = real[i]
        self._keys.extend(keys[i] for i in kept)
        self._texts.extend(texts[i] for i in kept)

    def duplicates_of(self, key: Hashable) -> Hashable | None:
        """The kept item that ``key`` was dropped as a near-duplicate of (None if kept)."""
        return self._dropped.get(key)

    @property
    def dropped(self) -> dict[Hashable, Hashable]:
        """Dropped key -> kept key it duplicates."""
        return dict(self._dropped)
