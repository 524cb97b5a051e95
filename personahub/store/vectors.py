"""Persisted persona embeddings: computed once per embedder, reused by every semantic step.

Vectors live in the store's ``persona_vector`` table (float32 bytes of a unit-length row),
keyed by embedder id and persona id (:func:`personahub.embeddings.embedder_id`). They are
kept in step with the personas: deleting a persona deletes its vectors, and a persona
inserted later simply has none until something needs it; :meth:`StoredVectors.fill` (the
``personahub embed`` command) or :meth:`StoredVectors.vectors_for` compute the missing ones
and store them, so the work is never done twice. Another embedder (another model, or the
same one changed) has its own rows: it recomputes lazily and never reads the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import and_, delete
from sqlmodel import Session, col, func, select

from personahub.db.engine import insert_ignoring
from personahub.store.models import Persona, PersonaVector, stored_id

if TYPE_CHECKING:
    from personahub.store.store import PersonaStore

# Rows per IN (...) list: well under SQLite's bound-parameter limit.
_IN_CHUNK = 500


def _unit_float32(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms


class StoredVectors:
    """One embedder's vectors in one store.

    Args:
        store: The persona store.
        embedder: Object with ``encode(texts) -> np.ndarray`` and ``dim`` (and ideally an
            ``id``); the packaged MiniLM when None, loaded only when something must be
            encoded.
        encode_batch: Texts per forward pass of the embedder.
    """

    def __init__(
        self, store: PersonaStore, embedder: Any | None = None, encode_batch: int = 64
    ) -> None:
        from personahub.embeddings import embedder_id

        self.store = store
        self._embedder = embedder
        self.encode_batch = encode_batch
        self.embedder_id = embedder_id(embedder)
        self.encoded = 0
        """Texts this object encoded (the rest came from the store)."""

    @property
    def embedder(self) -> Any:
        """The embedder, loaded on first use."""
        if self._embedder is None:
            from personahub.embeddings import get_embedder

            self._embedder = get_embedder()
        return self._embedder

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 rows of ``texts`` (counted in :attr:`encoded`)."""
        self.encoded += len(texts)
        return _unit_float32(self.embedder.encode(list(texts), batch_size=self.encode_batch))

    # -- counts ----------------------------------------------------------------------

    def count(self) -> int:
        """Vectors stored for this embedder."""
        query = select(func.count()).select_from(PersonaVector)
        with self.store.session() as session:
            return int(session.exec(query.where(PersonaVector.embedder == self.embedder_id)).one())

    def missing(self) -> int:
        """Personas without a vector of this embedder."""
        return self.store.count() - self.count()

    # -- writing ---------------------------------------------------------------------

    def put(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        """Store vectors for persona ids (a row already stored is left as it is)."""
        if not len(ids):
            return
        rows = [
            {"embedder": self.embedder_id, "persona_id": int(i), "vector": v.tobytes()}
            for i, v in zip(ids, _unit_float32(vectors), strict=True)
        ]
        table = PersonaVector.__table__  # type: ignore[attr-defined]

        def work(session: Session) -> None:
            statement = insert_ignoring(
                table, session.get_bind().dialect.name, ["embedder", "persona_id"]
            )
            session.execute(statement, rows)

        self.store._write(work)

    def fill(self, batch_size: int = 1024, progress: Callable[[int], None] | None = None) -> int:
        """Compute and store the vectors of every persona that has none, in id order.

        Each batch is one transaction, so an interrupted fill resumes where it stopped.

        Args:
            batch_size: Personas encoded and stored per transaction.
            progress: Called with the number of personas done after each batch.

        Returns:
            The number of vectors computed.
        """
        done = 0
        last_id = 0
        while True:
            page = self._without_vector(last_id, batch_size)
            if not page:
                return done
            ids = [i for i, _ in page]
            self.put(ids, self.encode([t for _, t in page]))
            done += len(page)
            last_id = ids[-1]
            if progress is not None:
                progress(len(page))

    def _without_vector(self, after: int, limit: int) -> list[tuple[int, str]]:
        joined = and_(
            col(PersonaVector.persona_id) == col(Persona.id),
            col(PersonaVector.embedder) == self.embedder_id,
        )
        query = (
            select(Persona.id, Persona.text)
            .outerjoin(PersonaVector, joined)
            .where(col(PersonaVector.persona_id).is_(None), col(Persona.id) > after)
            .order_by(col(Persona.id))
            .limit(limit)
        )
        with self.store.session() as session:
            return [(stored_id(i), t) for i, t in session.exec(query)]

    def delete_other_embedders(self) -> int:
        """Drop the vectors of every other embedder; returns how many rows went."""

        def work(session: Session) -> int:
            result = session.execute(
                delete(PersonaVector).where(col(PersonaVector.embedder) != self.embedder_id)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

        return self.store._write(work)

    # -- reading ---------------------------------------------------------------------

    def get(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """The stored vectors among ``ids`` (absent ids have none yet)."""
        found: dict[int, np.ndarray] = {}
        with self.store.session() as session:
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = [int(i) for i in ids[start : start + _IN_CHUNK]]
                rows = session.exec(
                    select(PersonaVector.persona_id, PersonaVector.vector).where(
                        PersonaVector.embedder == self.embedder_id,
                        col(PersonaVector.persona_id).in_(chunk),
                    )
                )
                found.update({i: np.frombuffer(v, dtype=np.float32) for i, v in rows})
        return found

    def vectors_for(self, ids: Sequence[int], texts: Sequence[str]) -> np.ndarray:
        """Vectors of personas given with their texts: stored ones read, missing ones
        encoded and stored. Rows follow ``ids``."""
        found = self.get(ids)
        todo = [k for k, i in enumerate(ids) if int(i) not in found]
        if todo:
            fresh = self.encode([texts[k] for k in todo])
            self.put([ids[k] for k in todo], fresh)
            for k, vector in zip(todo, fresh, strict=True):
                found[int(ids[k])] = vector
        if not len(ids):
            return np.zeros((0, getattr(self._embedder, "dim", 0) or 0), dtype=np.float32)
        return np.stack([found[int(i)] for i in ids])

    def scan(self, batch_size: int = 50_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every stored vector of this embedder, in persona id order, as (ids, rows) pages.

        Pages are keyset reads, so memory stays at one page however large the store is. They
        go through the driver's own cursor: building an SQLAlchemy row per vector costs
        more than reading it, and a similarity search reads every one.
        """
        mark = "?" if self.store.engine.dialect.paramstyle == "qmark" else "%s"
        sql = (
            f"SELECT persona_id, vector FROM persona_vector WHERE embedder = {mark} "
            f"AND persona_id > {mark} ORDER BY persona_id LIMIT {int(batch_size)}"
        )
        last_id = 0
        while True:
            connection = self.store.engine.raw_connection()
            try:
                cursor = connection.cursor()
                cursor.execute(sql, (self.embedder_id, last_id))
                rows = cursor.fetchall()
                cursor.close()
            finally:
                connection.close()
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            flat = np.frombuffer(b"".join(bytes(r[1]) for r in rows), dtype=np.float32)
            last_id = int(ids[-1])
            yield ids, flat.reshape(len(rows), -1)
