"""PersonaStore: personas, their relationship edges and source texts in one database.

A plain path means a SQLite file (WAL journal, foreign keys on); a string containing
``://`` is any SQLAlchemy URL (PostgreSQL for shared or large stores). Every operation
opens its own short :class:`sqlmodel.Session`, so a store object is cheap to share.

Opening a store migrates its schema to the newest revision (:mod:`personahub.db.migrations`).
Inserts skip rows whose unique key another writer stored first, so several processes can
fill one PostgreSQL store at once.

:class:`PersonaStore` reads here; it opens the database as a
:class:`~personahub.store.connection.StoreConnection` and writes as
:class:`~personahub.store.writing.StoreWrites`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlmodel import Session, col, func, select

from personahub.store.connection import chunks
from personahub.store.filters import PersonaFilter, carve_batches, sql_conditions
from personahub.store.models import Persona, PersonaEdge, PersonaVector, SourceText, stored_id
from personahub.store.writing import StoreWrites


class PersonaStore(StoreWrites):
    """The persona database.

    Args:
        url_or_path: A SQLite file path (``personas.db`` by default) or an SQLAlchemy URL.
            Engines come from :func:`personahub.db.engine.make_engine` (SQLite: WAL, foreign keys).

    Raises:
        StoreError: If the URL is invalid, its driver is missing or the database is
            unreachable.
    """

    def __repr__(self) -> str:
        return f"PersonaStore({self.url!r})"

    def get(self, persona_id: int) -> Persona | None:
        """Return one persona by id, or None."""
        with self.session() as session:
            return session.get(Persona, persona_id)

    def count(self, flt: PersonaFilter | None = None) -> int:
        """Count personas (those matching a filter when given)."""
        sql_only = flt is None or flt == PersonaFilter(
            origin=flt.origin, min_hop=flt.min_hop, max_hop=flt.max_hop
        )
        if not sql_only:
            return sum(1 for _ in self.iter_personas(flt))
        with self.session() as session:
            stmt = select(func.count()).select_from(Persona).where(*sql_conditions(flt))
            return int(session.exec(stmt).one())

    def _batches(self, flt: PersonaFilter | None, batch_size: int) -> Iterator[list[Persona]]:
        # Keyset pagination: each page is its own short read, so writers are not blocked
        # and memory stays at one page however large the store is.
        conditions = sql_conditions(flt)
        last_id = 0
        while True:
            with self.session() as session:
                stmt = (
                    select(Persona)
                    .where(col(Persona.id) > last_id, *conditions)
                    .order_by(col(Persona.id))
                    .limit(batch_size)
                )
                page = list(session.exec(stmt))
            if not page:
                return
            last_id = stored_id(page[-1].id)
            yield page

    def iter_personas(
        self, filter: PersonaFilter | None = None, batch_size: int = 1000, embedder_factory=None
    ) -> Iterator[Persona]:
        """Stream personas in id order (similarity order with ``top_k``).

        A ``similar_to`` filter is answered from the store's persisted vectors
        (:mod:`personahub.store.similar`), computing once those that are missing.

        Args:
            filter: What to select; None selects all.
            batch_size: Rows read per query.
            embedder_factory: Embedder provider for ``similar_to`` (default embedder if None).

        Yields:
            Detached :class:`Persona` rows.
        """
        if filter is not None and filter.similar_to is not None:
            from personahub.store.similar import similar_personas

            embedder = embedder_factory() if embedder_factory is not None else None
            for persona, _score in similar_personas(self, filter, embedder):
                yield persona
            return
        yield from carve_batches(self._batches(filter, batch_size), filter, embedder_factory)

    def personas(
        self, filter: PersonaFilter | None = None, limit: int | None = None, embedder_factory=None
    ) -> list[Persona]:
        """Return matching personas as a list (at most ``limit``)."""
        out: list[Persona] = []
        for persona in self.iter_personas(filter, embedder_factory=embedder_factory):
            if limit is not None and len(out) >= limit:
                break
            out.append(persona)
        return out

    def edges(self, persona_ids: set[int] | None = None) -> list[PersonaEdge]:
        """Return edges, all or those with both ends among ``persona_ids``."""
        with self.session() as session:
            if persona_ids is None:
                return list(session.exec(select(PersonaEdge).order_by(col(PersonaEdge.id))))
            found: dict[int, PersonaEdge] = {}
            for chunk in chunks(sorted(persona_ids)):
                rows = session.exec(select(PersonaEdge).where(col(PersonaEdge.src_id).in_(chunk)))
                found.update({e.id: e for e in rows if e.dst_id in persona_ids and e.id})
            return [found[k] for k in sorted(found)]

    def ids_for_external(self, external_ids: Iterable[str]) -> dict[str, int]:
        """Map external ids (e.g. from an import) to persona ids (lowest id wins)."""
        wanted = sorted(set(external_ids))
        mapping: dict[str, int] = {}
        with self.session() as session:
            for chunk in chunks(wanted):
                rows = session.exec(
                    select(Persona.external_id, Persona.id)
                    .where(col(Persona.external_id).in_(chunk))
                    .order_by(col(Persona.id).desc())
                )
                mapping.update({e: i for e, i in rows if e is not None and i is not None})
        return mapping

    def stats(self) -> dict[str, Any]:
        """Counts: personas in total and by origin, hop, angle and granularity; edges in
        total and by relation; source texts; stored vectors by embedder id."""

        def grouped(session: Session, column: Any) -> dict[str, int]:
            rows = session.exec(select(column, func.count()).group_by(column).order_by(column))
            return {("none" if key is None else str(key)): int(n) for key, n in rows}

        with self.session() as session:
            return {
                "personas": int(session.exec(select(func.count()).select_from(Persona)).one()),
                "by_origin": grouped(session, Persona.origin),
                "by_hop": grouped(session, Persona.hop),
                "by_angle": grouped(session, Persona.angle),
                "by_granularity": grouped(session, Persona.granularity),
                "edges": int(session.exec(select(func.count()).select_from(PersonaEdge)).one()),
                "edges_by_relation": grouped(session, PersonaEdge.relation),
                "source_texts": int(
                    session.exec(select(func.count()).select_from(SourceText)).one()
                ),
                "vectors_by_embedder": grouped(session, PersonaVector.embedder),
            }
