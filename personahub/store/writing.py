"""Writing to the store: personas (deduplicated by normalised text), relationship edges,
source texts, and deleting personas. Every write is its own transaction, rerun after a
deadlock, and skips rows that another writer stored first."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import delete, or_, update
from sqlmodel import Session, col, select

from personahub.db.engine import insert_new
from personahub.rows import text_hash
from personahub.store.connection import StoreConnection, StoreError, chunks
from personahub.store.models import (
    EdgeIn,
    Persona,
    PersonaEdge,
    PersonaIn,
    PersonaVector,
    SourceText,
    persona_hash,
    utcnow,
)

SOURCE_TEXT_KEEP_CHARS = 2000


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


class StoreWrites(StoreConnection):
    """The writing half of :class:`~personahub.store.store.PersonaStore`."""

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
            for chunk in chunks(unique):
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
                for chunk in chunks(list(new_rows)):
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
            for chunk in chunks(ids):
                query = select(col(Persona.id)).where(col(Persona.id).in_(chunk))
                present.update(session.exec(query))
            missing = [i for i in ids if i not in present]
            if missing:
                raise StoreError(f"edge references unknown persona id {missing[0]}")
            existing: set[tuple[int, int, str]] = set()
            srcs = sorted({e.src_id for e in batch})
            for chunk in chunks(srcs):
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
            for chunk in chunks(wanted):
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
