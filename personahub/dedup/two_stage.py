"""Two-stage semantic dedup: cheap static vectors find candidates, MiniLM decides.

A static embedding model (one vector per token, averaged; :mod:`personahub.dedup.static`)
embeds every text in microseconds. Its cosines find, through a usearch HNSW index of the
kept items and an exact comparison inside each block, the earlier kept items that *might*
be near-duplicates: those at or above a looser threshold (``candidate_threshold``). Only
items with such a candidate are embedded with the real model, and only candidate pairs are
re-scored, at the real threshold (0.9). An item without a candidate is kept unembedded,
and so is dropped one whose best kept candidate is in the *confident band* (static cosine
>= ``confident_threshold``, calibrated on a corpus apart from the benchmark's: there a full
pass almost always drops it too; docs/embeddings.md gives the measured precision).

The decision rule is the full pass's (:class:`~personahub.dedup.embedding.EmbeddingDeduper`):
an item is dropped when an earlier *kept* item has MiniLM cosine >= threshold. So without
the band the decisions equal a full MiniLM pass whenever every such pair is a candidate;
the candidate threshold is set so that the static model's cosine of a MiniLM near-duplicate
pair stays above it (on the benchmark corpus the lowest is 0.72 against the default 0.7; see
docs/embeddings.md).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
from usearch.index import Index

from personahub.dedup.embedding import VectorSource, earlier_neighbours, match_counts, unit_rows

CONFIDENT_THRESHOLD = 0.985
"""The calibrated static cosine of the (opt-in) confident band: the smallest (on a 0.005
grid) at which a calibration corpus's decisions agreed >= 99.75% with a full MiniLM pass (see
``benchmarks/dedup_band_calibration.py`` and docs/embeddings.md)."""


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
        confident_threshold: Static cosine at or above which a candidate pair is taken as
            a near-duplicate without re-scoring (the confident band): a text whose best
            kept candidate is that close is dropped with no real vector. None re-scores
            every candidate pair (the default: decisions then equal a full pass whenever
            recall is complete). :data:`CONFIDENT_THRESHOLD` was calibrated on a corpus
            apart from the benchmark's (docs/embeddings.md); the band is opt-in because
            its decisions differ from a full pass on a few texts (0.25% there, more where
            the static model reads a language poorly).
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
        confident_threshold: float | None = None,
    ) -> None:
        self.threshold = threshold
        self.candidate_threshold = candidate_threshold
        # float32 cosines of a pair right at the threshold may round either way.
        self._low = candidate_threshold - 1e-6
        self._high = confident_threshold
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
        self.confident = 0
        """Texts dropped in the confident band, without a real vector."""

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

    def _index_candidates(self, static: np.ndarray) -> list[list[tuple[int, float]]]:
        """Per row, (index label, static cosine) of kept items at or above the candidate
        threshold."""
        if self.index is None or not len(self.index):
            return [[] for _ in range(len(static))]
        matches = self.index.search(static, min(self.neighbours, len(self.index)))
        labels = np.asarray(matches.keys).reshape(len(static), -1)
        sims = 1.0 - np.asarray(matches.distances, dtype=np.float64).reshape(len(static), -1)
        counts = match_counts(matches).tolist()
        return [
            [(int(j), float(s)) for j, s in zip(labels[i, :c], sims[i, :c], strict=True)
             if s >= self._low]
            for i, c in enumerate(counts)
        ]  # fmt: skip

    def _confident(self, pairs: list[tuple[int, float]]) -> bool:
        return self._high is not None and any(s >= self._high for _, s in pairs)

    def _fetch(
        self,
        rows: set[int],
        labels: set[int],
        block: tuple[list[Hashable], list[str]],
        real: dict[int, np.ndarray],
        vectors: VectorSource | None,
    ) -> None:
        """Real vectors for block rows and kept index labels that lack one (one call each)."""
        keys, texts = block
        todo = sorted(r for r in rows if r not in real)
        if todo:
            found = self._real([keys[i] for i in todo], [texts[i] for i in todo], vectors)
            real.update(zip(todo, found, strict=True))
        # Items kept in earlier blocks without a candidate then are embedded only now.
        kept = sorted(j for j in labels if j not in self._full)
        if kept:
            found = self._real(
                [self._keys[j] for j in kept], [self._texts[j] for j in kept], vectors
            )
            self._full.update(zip(kept, found, strict=True))

    def _add_block(
        self, keys: list[Hashable], texts: list[str], vectors: VectorSource | None
    ) -> list[bool]:
        static = unit_rows(self.static.encode(texts))
        from_index = self._index_candidates(static)
        in_block = earlier_neighbours(static, self._low)
        block = (keys, texts)
        real: dict[int, np.ndarray] = {}
        # Fetched up front in one batch: the real vectors the band will almost surely need
        # (texts with a candidate but none in the confident band, and their candidates
        # that are not themselves about to be dropped as confident). Whatever the in-order
        # decisions need beyond that is fetched when needed.
        sure = [self._confident(from_index[i] + in_block[i]) for i in range(len(keys))]
        band = [i for i in range(len(keys)) if (from_index[i] or in_block[i]) and not sure[i]]
        self._fetch(
            {*band, *(j for i in band for j, _ in in_block[i] if not sure[j])},
            {j for i in band for j, _ in from_index[i]},
            block, real, vectors,
        )  # fmt: skip
        keep = [True] * len(keys)
        for i in range(len(keys)):
            earlier = [(j, s) for j, s in in_block[i] if keep[j]]
            if not from_index[i] and not earlier:
                continue
            if self._confident(from_index[i] + earlier):
                # Above the confident band: a near-duplicate without a real vector.
                keep[i] = False
                self.confident += 1
                pairs = [(s, self._keys[j]) for j, s in from_index[i]]
                pairs += [(s, keys[j]) for j, s in earlier]
                self._dropped[keys[i]] = max(pairs, key=lambda pair: pair[0])[1]
                continue
            self._fetch(
                {i, *(j for j, _ in earlier)}, {j for j, _ in from_index[i]},
                block, real, vectors,
            )  # fmt: skip
            scores = [(float(real[i] @ self._full[j]), self._keys[j]) for j, _ in from_index[i]]
            scores += [(float(real[i] @ real[j]), keys[j]) for j, _ in earlier]
            best = max(scores, key=lambda pair: pair[0])
            if best[0] >= self.threshold:
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
