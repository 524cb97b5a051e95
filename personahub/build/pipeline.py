"""The persona build: read -> Text-to-Persona -> filter -> dedup -> store, then k hops of
Persona-to-Persona (each hop: generate -> filter -> dedup -> store, with edges).

Work goes in chunks (``chunk_size`` texts or parent personas): one ``LLMClient.batch`` per
chunk, then filters, dedup and one store transaction, so memory stays bounded and progress
is saved chunk by chunk.

Dedup is :class:`~personahub.dedup.DedupPipeline` (MinHash, then embeddings), seeded with
every persona the store already holds, so a build added to a store decides exactly as one
batch run over everything would. Seeding reads the store's persisted vectors
(:class:`~personahub.store.StoredVectors`) and stores those it had to compute, and the
vectors dedup computes for new personas are stored with them, so no persona is embedded
twice across builds.

Resuming is derived from the store, so a killed or failed run is continued by running the
same command again:

* A source text is registered only once every angle of it was answered, and a rerun skips
  texts whose content hash is registered. Texts with a failed request are retried; what
  was answered comes back from the response cache.
* A hop expands every generated persona one hop short of it that has no outgoing edge and
  no child yet. Personas that dedup or the filters dropped were never stored, so they are
  never expanded; a parent whose request failed is expanded by the next run.

Each Text-to-Persona persona that passes the filters gets a *relevance*: the MiniLM cosine
between it and its source text, stored as the attribute ``relevance`` and summed up in the
report (mean and count per stage). With ``min_relevance`` set, personas below it are
dropped as ``irrelevant`` (on real texts a third of a small model's personas had little to
do with their text; see ``benchmarks/persona_quality.py``).

A related persona that dedup drops as a near-duplicate of a stored persona (other than its
parent) still gets its edge, pointing at that stored persona: "a colleague of A" who is
already known as B becomes the edge A -> B. This closes cycles in the relationship graph
instead of growing it.

The build's settings are :class:`~personahub.build.options.BuildOptions`; what it counts is
:class:`~personahub.build.report.BuildReport`.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from rich.progress import Progress, TaskID
from sqlmodel import col, select

from personahub.build.options import BuildOptions
from personahub.build.persona_to_persona import count_unexpanded, persona_to_persona, unexpanded
from personahub.build.quality import QualityFilter, clean_persona
from personahub.build.report import BuildReport, StageReport
from personahub.build.sources import SourceRecord
from personahub.build.text_to_persona import Candidate, text_to_persona
from personahub.dedup import DedupPipeline
from personahub.dedup.embedding import unit_rows
from personahub.llm import ErrorKind, LLMError, LLMResult
from personahub.llm.gateway import Gateway
from personahub.store import EdgeIn, PersonaStore, SourceText, StoredVectors

T2P_STAGE = "text-to-persona"
DEDUP_STAGES = ("minhash", "embedding")
# A whole chunk failing with one of these means the model cannot answer at all; going on
# would only queue more failures (and retries), so the build stops and says so.
_BLOCKING = frozenset(
    {ErrorKind.AUTH, ErrorKind.CONNECTION, ErrorKind.MODEL_UNAVAILABLE, ErrorKind.TIMEOUT}
)


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


class PersonaBuilder:
    """Runs a build against one store through one gateway client.

    Args:
        store: Where personas, edges and source texts go (and what dedup is seeded with).
        client: The LLM gateway.
        options: Build settings (validated here).
        embedder: Embedder for embedding dedup (default MiniLM, loaded on first use).
        progress: A rich Progress to add bars to, or None for none.
    """

    def __init__(
        self,
        store: PersonaStore,
        client: Gateway,
        options: BuildOptions | None = None,
        embedder: Any | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.options = options or BuildOptions()
        self.options.validate()
        self.store = store
        self.client = client
        self.progress = progress
        self.quality = QualityFilter(self.options.min_words, self.options.max_words)
        self.dedup = DedupPipeline(
            DEDUP_STAGES,
            minhash_threshold=self.options.minhash_threshold,
            embedding_threshold=self.options.embedding_threshold,
            embedder=embedder,
        )
        self.vectors = StoredVectors(store, embedder)
        self.report = BuildReport()
        self._new_keys = itertools.count()
        self._key_ids: dict[str, int] = {}

    # -- progress --------------------------------------------------------------------

    def _task(self, description: str, total: float | None) -> TaskID | None:
        if self.progress is None:
            return None
        return self.progress.add_task(description, total=total)

    def _advance(self, task: TaskID | None, amount: float = 1.0) -> None:
        if self.progress is not None and task is not None:
            self.progress.advance(task, amount)

    def note_malformed(self, line: int, reason: str) -> None:
        """Count a row the reader skipped (pass as ``read_texts(on_error=...)``)."""
        self.report.texts_malformed += 1

    def _stage(self, name: str) -> StageReport:
        return self.report.stages.setdefault(name, StageReport())

    # -- the run ---------------------------------------------------------------------

    async def run(self, records: Iterable[SourceRecord]) -> BuildReport:
        """Build from input texts: Text-to-Persona over every new text, then the hops.

        Args:
            records: Input texts (e.g. from :func:`personahub.build.sources.read_texts`).

        Returns:
            The report (also kept as ``self.report``).
        """
        options = self.options
        self.seed_dedup()
        stage = self._stage(T2P_STAGE)
        task = self._task(T2P_STAGE, options.limit)
        if options.limit is not None:
            records = itertools.islice(records, options.limit)
        for chunk in _chunks(records, options.chunk_size):
            await self._t2p_chunk(chunk, stage, task)
            if self.report.stopped:
                break
        for hop in range(1, options.hops + 1):
            if self.report.stopped:
                break
            await self._hop(hop)
        self.report.llm = self.client.usage()
        self.report.store = self.store.stats()
        return self.report

    def seed_dedup(self) -> None:
        """Feed every stored persona to dedup, in id order, before anything new."""
        total = self.store.count()
        if not total:
            return
        task = self._task("dedup index (stored personas)", total)
        for page in _chunks(self.store.iter_personas(batch_size=2048), 2048):
            keys = [p.id for p in page]
            self.dedup.add_batch(keys, [p.text for p in page], self.vectors.vectors_for)  # type: ignore[arg-type]
            self._advance(task, len(page))
        # Drops among stored personas are not this build's doing: stages count the
        # difference before/after each of their own batches.
        self.report.seeded = total

    async def _t2p_chunk(
        self, records: list[SourceRecord], stage: StageReport, task: TaskID | None
    ) -> None:
        options = self.options
        report = self.report
        report.texts_read += len(records)
        # Already stored, or seen earlier in this chunk: either way nothing to do.
        known = self._known_hashes([r.content_hash for r in records])
        todo: list[SourceRecord] = []
        for record in records:
            if record.content_hash in known:
                report.texts_skipped += 1
            else:
                known.add(record.content_hash)
                todo.append(record)
        self._advance(task, len(records) - len(todo))
        if not todo:
            return
        angles = options.angles
        stage.inputs += len(todo)
        stage.requests += len(todo) * len(angles)
        results = await text_to_persona(
            self.client,
            [r.text for r in todo],
            angles,
            options.granularity,
            options.concurrency,
            on_result=lambda _i, _r: self._advance(task, 1 / len(angles)),
            seed=options.seed,
        )
        candidates: list[Candidate] = []
        errors: list[LLMError] = []
        for record, row in zip(todo, results, strict=True):
            failed = [x for x in row if isinstance(x, LLMError)]
            if failed:
                errors.extend(failed)
                stage.held_back += len(row) - len(failed)
                report.texts_failed += 1
                continue
            source_id = self.store.add_source_text(record.text, record.origin)
            for candidate in row:
                assert isinstance(candidate, Candidate)
                candidate.source_text_id = source_id
                candidates.append(candidate)
        self._record_errors(stage, errors, len(todo) * len(angles))
        stage.generated += len(candidates)
        self._admit(stage, candidates)
        self.client.flush()

    async def _hop(self, hop: int) -> None:
        options = self.options
        name = f"hop {hop}"
        stage = self._stage(name)
        task = self._task(name, count_unexpanded(self.store, hop - 1))

        def on_result(_index: int, _result: LLMResult) -> None:
            self._advance(task)

        for page in unexpanded(self.store, hop - 1, options.chunk_size):
            stage.inputs += len(page)
            stage.requests += len(page)
            results = await persona_to_persona(
                self.client,
                page,
                options.per_hop,
                options.granularity,
                options.concurrency,
                on_result=on_result,
                seed=options.seed,
            )
            candidates = [c for r in results if not isinstance(r, LLMError) for c in r]
            errors = [r for r in results if isinstance(r, LLMError)]
            self._record_errors(stage, errors, len(page))
            stage.generated += len(candidates)
            self._admit(stage, candidates)
            self.client.flush()
            if self.report.stopped:
                return

    def _record_errors(self, stage: StageReport, errors: list[LLMError], requests: int) -> None:
        stage.failed += len(errors)
        self.report.errors.update(e.kind.value for e in errors)
        if errors and self.report.first_error is None:
            self.report.first_error = str(errors[0])
        kinds = {e.kind for e in errors}
        if ErrorKind.BUDGET_EXHAUSTED in kinds:
            self.report.stopped = "the LLM budget is spent (raise --max-calls/--max-tokens-total)"
        elif len(errors) == requests and len(kinds) == 1 and kinds <= _BLOCKING:
            self.report.stopped = f"every request of a chunk failed: {errors[0]}"

    # -- filter -> dedup -> store ------------------------------------------------------

    def _admit(self, stage: StageReport, candidates: Sequence[Candidate]) -> None:
        passed = []
        for candidate in candidates:
            candidate.text = clean_persona(candidate.text)
            reason = self.quality.check(candidate.text, candidate.context, candidate.kind)
            if reason is None:
                passed.append(candidate)
            else:
                stage.filtered[reason] += 1
        passed = self._relevant(stage, passed)
        if not passed:
            return
        keys = [f"new:{next(self._new_keys)}" for _ in passed]
        before = dict(self.dedup.dropped)
        fresh: dict[Hashable, np.ndarray] = {}

        def encode(batch_keys: Sequence[Hashable], texts: Sequence[str]) -> np.ndarray:
            rows = self.vectors.encode(texts)
            fresh.update(zip(batch_keys, rows, strict=True))
            return rows

        flags = self.dedup.add_batch(keys, [c.text for c in passed], encode)
        for name, count in self.dedup.dropped.items():
            stage.deduped[name] += count - before.get(name, 0)
        kept = [(k, c) for k, c, keep in zip(keys, passed, flags, strict=True) if keep]
        added = self.store.add_personas([c.to_persona_in() for _, c in kept])
        stage.stored += added.added
        stage.known += added.duplicates
        # What dedup embedded is stored with the personas (rows already there are kept).
        embedded = [(i, fresh[k]) for (k, _), i in zip(kept, added.ids, strict=True) if k in fresh]
        if embedded:
            self.vectors.put([i for i, _ in embedded], np.stack([v for _, v in embedded]))
        child_edges = []
        for (key, candidate), persona_id in zip(kept, added.ids, strict=True):
            self._key_ids[key] = persona_id
            if candidate.parent_id is not None and candidate.parent_id != persona_id:
                child_edges.append(self._edge(candidate, persona_id))
        # One edge per (parent, person): a parent naming the same person twice under two
        # labels (the second a near-duplicate) keeps the first label only.
        linked_pairs = {(e.src_id, e.dst_id) for e in child_edges}
        link_edges = []
        for key, candidate, keep in zip(keys, passed, flags, strict=True):
            if keep or candidate.parent_id is None:
                continue
            duplicate = self.dedup.duplicates_of(key)
            target = self._resolve(duplicate[1]) if duplicate else None
            if target is None or target == candidate.parent_id:
                continue
            pair = (candidate.parent_id, target)
            if pair not in linked_pairs:
                linked_pairs.add(pair)
                link_edges.append(self._edge(candidate, target))
        stage.edges += self.store.add_edges(child_edges) if child_edges else 0
        linked = self.store.add_edges(link_edges) if link_edges else 0
        stage.edges += linked
        stage.linked += linked

    def _relevant(self, stage: StageReport, candidates: list[Candidate]) -> list[Candidate]:
        """Score Text-to-Persona candidates against their source text; drop those below
        ``min_relevance``."""
        scored = [c for c in candidates if c.source]
        if not scored:
            return candidates
        sources = list(dict.fromkeys(c.source for c in scored))
        rows = unit_rows(self.vectors.encode([c.text for c in scored]))
        source_rows = dict(zip(sources, unit_rows(self.vectors.encode(sources)), strict=True))
        low: set[int] = set()
        minimum = self.options.min_relevance
        for candidate, row in zip(scored, rows, strict=True):
            relevance = round(float(row @ source_rows[candidate.source]), 4)
            candidate.attributes["relevance"] = relevance
            stage.relevance.append(relevance)
            if minimum is not None and relevance < minimum:
                low.add(id(candidate))
                stage.filtered["irrelevant"] += 1
        return [c for c in candidates if id(c) not in low]

    @staticmethod
    def _edge(candidate: Candidate, target: int) -> EdgeIn:
        assert candidate.parent_id is not None and candidate.relation is not None
        return EdgeIn(src_id=candidate.parent_id, dst_id=target, relation=candidate.relation)

    def _resolve(self, key: Hashable) -> int | None:
        # Seeded personas are keyed by their store id, new ones by "new:<n>".
        return key if isinstance(key, int) else self._key_ids.get(str(key))

    # -- store queries ---------------------------------------------------------------

    def _known_hashes(self, hashes: list[str]) -> set[str]:
        with self.store.session() as session:
            rows = session.exec(
                select(SourceText.content_hash).where(col(SourceText.content_hash).in_(hashes))
            )
            return set(rows)
