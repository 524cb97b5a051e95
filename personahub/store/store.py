"""PersonaStore: personas, their relationship edges and source texts in one database.

A plain path means a SQLite file (WAL journal, foreign keys on); a string containing
``://`` is any SQLAlchemy URL (PostgreSQL for shared or large stores). Every operation
opens its own short :class:`sqlmodel.Session`, so a store object is cheap to share.

Opening a store migrates its schema to the newest revision (:mod:`personahub.db.migrations`).
Inserts skip rows whose unique key another writer stored first, so several processes can
fill one PostgreSQL store at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine, delete, or_, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, col, func, select

from personahub.db.engine import (
    DatabaseError,
    database_url,
    insert_new,
    make_engine,
    safe_url,
    write_transaction,
)
from personahub.db.migrations import upgrade
from personahub.rows import text_hash
from personahub.store.filters import PersonaFilter, carve_batches, sql_conditions
from personahub.store.models import (
    STORE_SCHEMA,
    EdgeIn,
    Persona,
    PersonaEdge,
    PersonaIn,
    PersonaVector,
    SourceText,
    persona_hash,
    stored_id,
    utcnow,
)

T = TypeVar("T")
# Well under SQLite's bound-parameter limit, and a sane size for IN (...) lists elsewhere.
_IN_CHUNK = 500
SOURCE_TEXT_KEEP_CHARS = 2000


class StoreError(RuntimeError):
    """A store problem worded as one line for the user."""


class AddReport(BaseModel):
    """Outcome of :meth:`PersonaStore.add_personas`.

    Attributes:
        added: Personas inserted.
        duplicates: Items skipped because the same normalised text is already stored
            (or appeared earlier in the same call).
        ids: The persona id for every item, in input order (the existing id for duplicates).
    """

    added: int = 0
    duplicates: int = 0
    ids: list[int] = []


def _one_line(exc: BaseException) -> str:
    # SQLAlchemy appends a background link and the SQL; the driver's message is enough.
    inner = getattr(exc, "orig", None) or exc
    text = str(inner).strip().splitlines()
    return text[0] if text else type(inner).__name__


def _chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class PersonaStore:
    """The persona database.

    Args:
        url_or_path: A SQLite file path (``personas.db`` by default) or an SQLAlchemy URL.
            Engines come from :func:`personahub.db.engine.make_engine` (SQLite: WAL, foreign keys).

    Raises:
        StoreError: If the URL is invalid, its driver is missing or the database is
            unreachable.
    """

    def __init__(self, url_or_path: str | Path = "personas.db") -> None:
        self.url = safe_url(database_url(url_or_path))
        try:
            self.engine: Engine = make_engine(url_or_path)
            upgrade(self.engine, STORE_SCHEMA)
        except DatabaseError as exc:
            raise StoreError(str(exc)) from None
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"cannot open store {self.url}: {_one_line(exc)}") from None

    def __repr__(self) -> str:
        return f"PersonaStore({self.url!r})"

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    def _error(self, exc: SQLAlchemyError) -> StoreError:
        if isinstance(exc, IntegrityError):
            return StoreError(f"store constraint violated: {_one_line(exc)}")
        return StoreError(f"store error ({self.url}): {_one_line(exc)}")

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose database errors surface as :class:`StoreError`."""
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                yield session
        except SQLAlchemyError as exc:
            raise self._error(exc) from None

    def _write(self, work: Callable[[Session], T]) -> T:
        """A write transaction, rerun after a deadlock with a concurrent writer."""
        try:
            return write_transaction(self.engine, work)
        except SQLAlchemyError as exc:
            raise self._error(exc) from None

    # -- writing -----------------------------------------------------------------------

    def add_personas(
        self, items: Iterable[PersonaIn | dict[str, Any]], batch_size: int = 5000
    ) -> AddReport:
        """Insert personas, skipping exact duplicates (same normalised text).

        Args:
            items: Personas (dicts are validated as :class:`PersonaIn`).
            batch_size: Rows per transaction.

        Returns:
            Counts and the id of every item.

        Raises:
            StoreError: If an item is invalid or a reference (parent, source) is unknown.
        """
        report = AddReport()
        batch: list[PersonaIn] = []
        for index, item in enumerate(items):
            try:
                batch.append(
                    item if isinstance(item, PersonaIn) else PersonaIn.model_validate(item)
                )
            except ValidationError as exc:
                message = exc.errors()[0]
                where = ".".join(str(p) for p in message["loc"]) or "item"
                raise StoreError(f"persona #{index} invalid: {where}: {message['msg']}") from None
            if len(batch) >= batch_size:
                self._add_batch(batch, report)
                batch = []
        if batch:
            self._add_batch(batch, report)
        return report

    def _add_batch(self, batch: list[PersonaIn], report: AddReport) -> None:
        hashes = [persona_hash(p.text) for p in batch]
        table = Persona.__table__  # type: ignore[attr-defined]

        def work(session: Session) -> tuple[dict[str, int], int]:
            known: dict[str, int] = {}
            unique = list(dict.fromkeys(hashes))
            for chunk in _chunks(unique):
                rows = session.execute(
                    select(Persona.id, Persona.norm_hash).where(col(Persona.norm_hash).in_(chunk))
                )
                known.update({h: i for i, h in rows})
            now = utcnow()
            new_rows: dict[str, dict[str, Any]] = {}
            for item, digest in zip(batch, hashes, strict=True):
                if digest in known or digest in new_rows:
                    continue
                row = item.model_dump()
                row.update(norm_hash=digest, created=now)
                new_rows[digest] = row
            inserted = len(insert_new(session, table, list(new_rows.values()), ["norm_hash"]))
            if new_rows:
                for chunk in _chunks(list(new_rows)):
                    rows = session.execute(
                        select(Persona.id, Persona.norm_hash).where(
                            col(Persona.norm_hash).in_(chunk)
                        )
                    )
                    known.update({h: i for i, h in rows})
            return known, inserted

        known, inserted = self._write(work)
        report.added += inserted
        report.duplicates += len(batch) - inserted
        report.ids.extend(known[h] for h in hashes)

    def add_edges(self, items: Iterable[EdgeIn | dict[str, Any]], batch_size: int = 5000) -> int:
        """Insert relationship edges; an edge already stored (same src, dst, relation) is
        skipped.

        Returns:
            The number of edges inserted.

        Raises:
            StoreError: If an edge is invalid or references a persona that does not exist.
        """
        added = 0
        batch: list[EdgeIn] = []
        for index, item in enumerate(items):
            try:
                batch.append(item if isinstance(item, EdgeIn) else EdgeIn.model_validate(item))
            except ValidationError as exc:
                raise StoreError(f"edge #{index} invalid: {exc.errors()[0]['msg']}") from None
            if len(batch) >= batch_size:
                added += self._add_edge_batch(batch)
                batch = []
        if batch:
            added += self._add_edge_batch(batch)
        return added

    def _add_edge_batch(self, batch: list[EdgeIn]) -> int:
        keys = {(e.src_id, e.dst_id, e.relation): e for e in batch}
        ids = sorted({e.src_id for e in batch} | {e.dst_id for e in batch})

        def work(session: Session) -> int:
            # The model's id is Optional (unset before insert), so its column selects as such.
            present: set[int | None] = set()
            for chunk in _chunks(ids):
                query = select(col(Persona.id)).where(col(Persona.id).in_(chunk))
                present.update(session.exec(query))
            missing = [i for i in ids if i not in present]
            if missing:
                raise StoreError(f"edge references unknown persona id {missing[0]}")
            existing: set[tuple[int, int, str]] = set()
            srcs = sorted({e.src_id for e in batch})
            for chunk in _chunks(srcs):
                rows = session.exec(
                    select(PersonaEdge.src_id, PersonaEdge.dst_id, PersonaEdge.relation).where(
                        col(PersonaEdge.src_id).in_(chunk)
                    )
                )
                existing.update((s, d, r) for s, d, r in rows)
            rows_new = [e.model_dump() for k, e in keys.items() if k not in existing]
            table = PersonaEdge.__table__  # type: ignore[attr-defined]
            return len(insert_new(session, table, rows_new, ["src_id", "dst_id", "relation"]))

        return self._write(work)

    def add_source_text(
        self, text: str, origin: str, keep_chars: int | None = SOURCE_TEXT_KEEP_CHARS
    ) -> int:
        """Register an input text (idempotent by content hash).

        Args:
            text: The text.
            origin: Where it came from (file path and line).
            keep_chars: Keep a copy of at most this many characters (None: no copy).

        Returns:
            The id of the (new or existing) source text.
        """
        digest = text_hash(text)
        copy = text[:keep_chars] if keep_chars is not None else None
        row = {"content_hash": digest, "origin": origin, "text": copy, "created": utcnow()}
        query = select(SourceText.id).where(SourceText.content_hash == digest)

        def work(session: Session) -> int:
            found = session.exec(query).first()
            if found is None:
                table = SourceText.__table__  # type: ignore[attr-defined]
                insert_new(session, table, [row], ["content_hash"])
                # Ours, or the one another writer stored between the check and the insert.
                found = session.exec(query).one()
            assert found is not None
            return found

        return self._write(work)

    def delete_personas(self, ids: Iterable[int]) -> int:
        """Delete personas with their edges and stored vectors; children keep existing with
        no parent.

        Returns:
            The number of personas deleted.
        """
        wanted = sorted(set(ids))

        def work(session: Session) -> int:
            deleted = 0
            for chunk in _chunks(wanted):
                session.execute(
                    delete(PersonaEdge).where(
                        or_(col(PersonaEdge.src_id).in_(chunk), col(PersonaEdge.dst_id).in_(chunk))
                    )
                )
                session.execute(
                    update(Persona).where(col(Persona.parent_id).in_(chunk)).values(parent_id=None)
                )
                # The foreign key cascades too; deleting here keeps SQLite connections that
                # run without foreign keys in step.
                session.execute(
                    delete(PersonaVector).where(col(PersonaVector.persona_id).in_(chunk))
                )
                result = session.execute(delete(Persona).where(col(Persona.id).in_(chunk)))
                deleted += result.rowcount or 0  # type: ignore[attr-defined]
            return deleted

        # A write transaction: on PostgreSQL the vector deletion locks the vector-state row
        # (store revision 0003), so a concurrent vector insert can deadlock with it; the
        # aborted side is rerun.
        return self._write(work)

    # -- reading -----------------------------------------------------------------------

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
            for chunk in _chunks(sorted(persona_ids)):
                rows = session.exec(select(PersonaEdge).where(col(PersonaEdge.src_id).in_(chunk)))
                found.update({e.id: e for e in rows if e.dst_id in persona_ids and e.id})
            return [found[k] for k in sorted(found)]

    def ids_for_external(self, external_ids: Iterable[str]) -> dict[str, int]:
        """Map external ids (e.g. from an import) to persona ids (lowest id wins)."""
        wanted = sorted(set(external_ids))
        mapping: dict[str, int] = {}
        with self.session() as session:
            for chunk in _chunks(wanted):
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
