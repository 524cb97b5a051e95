"""Near-duplicate removal: MinHash (lexical) then embedding similarity (semantic).

:class:`DedupPipeline` chains the stages incrementally (the build command feeds it batch
by batch, after seeding it with what the store already holds); :func:`dedup_personas`
runs it over a list of texts or over a whole :class:`~personahub.store.PersonaStore`,
where it keeps the lowest id of each near-duplicate group and deletes the others.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel

from personahub.dedup.embedding import EmbeddingDeduper, VectorSource
from personahub.dedup.minhash import MinHashDeduper, MinHasher
from personahub.dedup.removed import Drop, RemovedPersona, describe_drops, write_removed
from personahub.dedup.two_stage import TwoStageDeduper

STAGES = ("minhash", "embedding")

__all__ = [
    "STAGES",
    "DedupPipeline",
    "DedupReport",
    "EmbeddingDeduper",
    "MinHashDeduper",
    "MinHasher",
    "RemovedPersona",
    "TwoStageDeduper",
    "dedup_personas",
    "write_removed",
]


class DedupReport(BaseModel):
    """Outcome of a dedup run.

    Attributes:
        total: Items examined.
        kept: Items kept.
        dropped: Items dropped, per stage.
        kept_keys: For a list input, the indices kept (in order); empty for a store.
        deleted: Personas deleted from the store (0 for a list or a dry run).
        dry_run: Whether the store was left unchanged.
        removed: For a store with ``list_removed``, each dropped persona with the kept
            persona it duplicates, the stage and the similarity.
        vectors_read: For a store, vectors the embedding stage read from the store.
        vectors_computed: For a store, vectors the embedding stage computed (and stored).
        confident: Texts the two-stage path dropped in its confident band, with no vector.
    """

    total: int = 0
    kept: int = 0
    dropped: dict[str, int] = {}
    kept_keys: list[int] = []
    deleted: int = 0
    dry_run: bool = False
    removed: list[RemovedPersona] = []
    vectors_read: int = 0
    vectors_computed: int = 0
    confident: int = 0


class DedupPipeline:
    """The dedup stages in order, each seeing only what the previous one kept.

    Args:
        stages: Stage names from ``("minhash", "embedding")``, in order.
        minhash_threshold: Jaccard threshold of the MinHash stage.
        embedding_threshold: Cosine threshold of the embedding stage.
        embedder: Embedder for the embedding stage (default MiniLM, loaded lazily).
        two_stage: Run the embedding stage as :class:`TwoStageDeduper` (static-model
            candidates, re-scored with the embedder), which embeds only texts that have a
            candidate.
        confident_threshold: With ``two_stage``, the static cosine of the confident band
            (see :class:`TwoStageDeduper`); None (the default) re-scores every candidate pair.
    """

    def __init__(
        self,
        stages: Sequence[str] = STAGES,
        minhash_threshold: float = 0.9,
        embedding_threshold: float = 0.9,
        embedder: Any | None = None,
        two_stage: bool = False,
        confident_threshold: float | None = None,
    ) -> None:
        unknown = [s for s in stages if s not in STAGES]
        if unknown or not stages:
            raise ValueError(f"unknown dedup stage {unknown[:1]}; choose from {', '.join(STAGES)}")
        self.stages = list(dict.fromkeys(stages))
        self._filters: dict[str, MinHashDeduper | EmbeddingDeduper | TwoStageDeduper] = {}
        for stage in self.stages:
            if stage == "minhash":
                self._filters[stage] = MinHashDeduper(threshold=minhash_threshold)
            elif two_stage:
                self._filters[stage] = TwoStageDeduper(
                    embedding_threshold, embedder=embedder, confident_threshold=confident_threshold
                )
            else:
                self._filters[stage] = EmbeddingDeduper(embedding_threshold, embedder=embedder)
        self.dropped: dict[str, int] = dict.fromkeys(self.stages, 0)
        self.total = 0

    def add_batch(
        self,
        keys: Sequence[Hashable],
        texts: Sequence[str],
        vectors: VectorSource | None = None,
    ) -> list[bool]:
        """Run the stages over a batch; True = kept by every stage.

        ``vectors`` gives the embedding stage the vectors of the texts it sees (e.g. a
        store's persisted ones) instead of encoding them.
        """
        keep = [True] * len(keys)
        alive = list(range(len(keys)))
        for stage in self.stages:
            if not alive:
                break
            alive_keys, alive_texts = [keys[i] for i in alive], [texts[i] for i in alive]
            deduper = self._filters[stage]
            if isinstance(deduper, EmbeddingDeduper | TwoStageDeduper):
                flags = deduper.add_batch(alive_keys, alive_texts, vectors)
            else:
                flags = deduper.add_batch(alive_keys, alive_texts)
            self.dropped[stage] += flags.count(False)
            for i, flag in zip(alive, flags, strict=True):
                keep[i] = flag
            alive = [i for i in alive if keep[i]]
        self.total += len(keys)
        return keep

    @property
    def confident(self) -> int:
        """Texts the two-stage embedding stage dropped in its confident band."""
        return sum(f.confident for f in self._filters.values() if isinstance(f, TwoStageDeduper))

    @property
    def hasher(self) -> MinHasher | None:
        """The MinHash stage's hasher (None without that stage)."""
        deduper = self._filters.get("minhash")
        return deduper.hasher if isinstance(deduper, MinHashDeduper) else None

    def duplicates_of(self, key: Hashable) -> tuple[str, Hashable] | None:
        """(stage, kept key) that dropped ``key``, or None if it was kept."""
        for stage, deduper in self._filters.items():
            other = deduper.duplicates_of(key)
            if other is not None:
                return stage, other
        return None


def _text_of(item: Any) -> str:
    return item if isinstance(item, str) else str(item.text)


def dedup_personas(
    source: Any,
    stages: Sequence[str] = STAGES,
    minhash_threshold: float = 0.9,
    embedding_threshold: float = 0.9,
    embedder: Any | None = None,
    dry_run: bool = False,
    batch_size: int = 2048,
    progress: Callable[[int], None] | None = None,
    two_stage: bool = False,
    list_removed: bool = False,
    confident_threshold: float | None = None,
) -> DedupReport:
    """Remove near-duplicates from a list of personas or from a store.

    Args:
        source: A :class:`~personahub.store.PersonaStore`, or a sequence of texts or of
            objects with a ``text`` attribute.
        stages: Stages to run, in order.
        minhash_threshold: Jaccard threshold.
        embedding_threshold: Cosine threshold.
        embedder: Embedder for the embedding stage.
        dry_run: For a store, report without deleting.
        batch_size: Items per batch.
        progress: Called with the number of items processed since the last call.
        two_stage: See :class:`DedupPipeline`.
        list_removed: For a store, also describe each dropped persona (``removed``).
        confident_threshold: See :class:`DedupPipeline`.

    Returns:
        Counts per stage; for a list, the kept indices; for a store, the deleted count
        (and with ``list_removed``, what was removed).
    """
    is_list = isinstance(source, Sequence) and not hasattr(source, "iter_personas")
    vectors: VectorSource | None = None
    stored: Any = None
    asked = 0  # vectors the embedding stage asked for: read or computed
    if not is_list and "embedding" in stages:
        # A store's personas are embedded once: stored vectors are read, missing ones
        # computed and stored for the next run.
        from personahub.store.vectors import StoredVectors

        stored = StoredVectors(source, embedder)

        def counted(keys: Sequence[Hashable], texts: Sequence[str]) -> np.ndarray:
            nonlocal asked
            asked += len(texts)
            return np.asarray(stored.vectors_for(keys, texts))

        vectors = counted
    pipeline = DedupPipeline(
        stages, minhash_threshold, embedding_threshold, embedder, two_stage, confident_threshold
    )
    report = DedupReport(dry_run=dry_run)
    if is_list:
        items: Sequence[Any] = source
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            keys = list(range(start, start + len(chunk)))
            flags = pipeline.add_batch(keys, [_text_of(x) for x in chunk])
            report.kept_keys.extend(k for k, f in zip(keys, flags, strict=True) if f)
            if progress is not None:
                progress(len(chunk))
    else:
        drop: list[int] = []
        drops: list[Drop] = []
        for batch in _store_batches(source, batch_size):
            keys = [p.id for p in batch]
            flags = pipeline.add_batch(keys, [p.text for p in batch], vectors)
            dropped = [p for p, f in zip(batch, flags, strict=True) if not f]
            drop.extend(p.id for p in dropped)
            if list_removed:
                drops.extend(_drop(pipeline, p) for p in dropped)
            if progress is not None:
                progress(len(batch))
        # Counted before describing the drops, which may embed more for their similarities.
        report.vectors_computed = stored.encoded if stored is not None else 0
        report.vectors_read = asked - report.vectors_computed
        if drops:
            # Before deleting: the kept personas' texts are read from the store.
            report.removed = describe_drops(source, drops, pipeline.hasher, vectors)
        # Ids are streamed in increasing order, so each group keeps its lowest id.
        if not dry_run and drop:
            report.deleted = source.delete_personas(drop)
    report.total = pipeline.total
    report.confident = pipeline.confident
    report.dropped = dict(pipeline.dropped)
    report.kept = report.total - sum(report.dropped.values())
    return report


def _drop(pipeline: DedupPipeline, persona: Any) -> Drop:
    found = pipeline.duplicates_of(persona.id)
    assert found is not None, "a dropped persona has a kept duplicate"
    stage, kept = found
    return Drop(id=persona.id, text=persona.text, stage=stage, kept_id=int(kept))  # type: ignore[call-overload]


def _store_batches(store: Any, batch_size: int) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for persona in store.iter_personas(batch_size=batch_size):
        batch.append(persona)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch
