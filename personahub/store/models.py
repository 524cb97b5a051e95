"""SQLModel tables of the persona store, and the pydantic models at its boundary.

Tables: :class:`SourceText` (an input text personas were derived from), :class:`Persona`,
:class:`PersonaEdge` (typed, weighted relationships between personas, from
Persona-to-Persona hops or an imported edges file), :class:`PersonaVector` (a persona's
embedding under one embedder, computed once and reused) and :class:`PersonaVectorState` (a
token that changes with every change to the vectors, so caches of them can tell they are
stale).

Enumerated values (origin, angle, granularity) are stored as plain strings and validated
by the ``*In`` models: native database enums would make adding a value a migration.

The schema is migrated with Alembic (:data:`STORE_SCHEMA`, revisions in ``migrations/``): a
change to these tables needs a revision (docs/migrations.md), which a test enforces.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from personahub.db.engine import BIG_ID
from personahub.db.migrations import Schema
from personahub.rows import text_hash


class PersonaOrigin(StrEnum):
    """How a persona came to be."""

    TEXT_TO_PERSONA = "text_to_persona"
    PERSONA_TO_PERSONA = "persona_to_persona"
    IMPORTED = "imported"


Origin = Literal["text_to_persona", "persona_to_persona", "imported"]
Angle = Literal["read", "write", "like", "dislike"]
Granularity = Literal["coarse", "fine"]
ORIGINS: tuple[str, ...] = tuple(o.value for o in PersonaOrigin)


def utcnow() -> datetime:
    """Timezone-aware now, the value of every ``created`` column."""
    return datetime.now(UTC)


def persona_hash(text: str) -> str:
    """sha256 of the lowercase, whitespace-collapsed persona text (the exact-duplicate key)."""
    return text_hash(text)


def stored_id(row_id: int | None) -> int:
    """The id of a row read from the store.

    The tables type ``id`` Optional because it is unset until the insert; a row read back
    always has one, so a missing id is a bug, not data.
    """
    if row_id is None:
        raise ValueError("a row read from the store has no id")
    return row_id


class SourceText(SQLModel, table=True):
    """An input text that personas were derived from."""

    __tablename__ = "source_text"

    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    content_hash: str = Field(index=True, unique=True, max_length=64)
    origin: str
    text: str | None = None
    created: datetime = Field(default_factory=utcnow)


class Persona(SQLModel, table=True):
    """One persona."""

    __tablename__ = "persona"

    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    text: str
    norm_hash: str = Field(index=True, unique=True, max_length=64)
    origin: str = Field(default=PersonaOrigin.IMPORTED.value, index=True, max_length=32)
    angle: str | None = Field(default=None, max_length=16)
    granularity: str | None = Field(default=None, max_length=16)
    source_text_id: int | None = Field(
        default=None, foreign_key="source_text.id", ondelete="SET NULL", index=True, sa_type=BIG_ID
    )
    parent_id: int | None = Field(
        default=None, foreign_key="persona.id", ondelete="SET NULL", index=True, sa_type=BIG_ID
    )
    hop: int = Field(default=0, index=True)
    model: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    external_id: str | None = Field(default=None, index=True)
    created: datetime = Field(default_factory=utcnow)


class PersonaEdge(SQLModel, table=True):
    """A typed relationship from one persona to another."""

    __tablename__ = "persona_edge"
    __table_args__ = (UniqueConstraint("src_id", "dst_id", "relation", name="uq_edge"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    src_id: int = Field(foreign_key="persona.id", ondelete="CASCADE", index=True, sa_type=BIG_ID)
    dst_id: int = Field(foreign_key="persona.id", ondelete="CASCADE", index=True, sa_type=BIG_ID)
    relation: str = Field(max_length=64)
    strength: float = 1.0


class PersonaVector(SQLModel, table=True):
    """A persona's embedding under one embedder: float32 bytes of a unit-length row.

    The key leads with the embedder so that one embedder's vectors are read in persona id
    order from the key alone; vectors of another embedder are never mixed in.
    """

    __tablename__ = "persona_vector"

    embedder: str = Field(primary_key=True, max_length=80)
    persona_id: int = Field(
        primary_key=True, foreign_key="persona.id", ondelete="CASCADE", index=True, sa_type=BIG_ID
    )
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class PersonaVectorState(SQLModel, table=True):
    """One row whose ``token`` is replaced by a fresh random one whenever a ``persona_vector``
    row is inserted, updated or deleted (cascades included).

    Database triggers (store revision ``0003``) keep it, in the same transaction as the
    change, so no writer can forget it. A cache of the vectors (the similarity search's
    matrix file) is valid exactly while the token it was built under is current; being
    random rather than a counter, a token never recurs in a recreated or copied database.
    """

    __tablename__ = "persona_vector_state"

    id: int = Field(primary_key=True)
    token: str = Field(max_length=32)


STORE_TABLES = [
    SourceText.__table__,  # type: ignore[attr-defined]
    Persona.__table__,  # type: ignore[attr-defined]
    PersonaEdge.__table__,  # type: ignore[attr-defined]
    PersonaVector.__table__,  # type: ignore[attr-defined]
    PersonaVectorState.__table__,  # type: ignore[attr-defined]
]

STORE_SCHEMA = Schema(
    name="persona store",
    script_location=Path(__file__).resolve().parent / "migrations",
    version_table="alembic_version_personahub_store",
    metadata=SQLModel.metadata,
    tables=frozenset(table.name for table in STORE_TABLES),
)
"""The store's Alembic environment; its own version table lets a run database share the
PostgreSQL database."""


class PersonaIn(BaseModel):
    """A persona to add to the store (validated at the boundary)."""

    model_config = ConfigDict(extra="forbid")

    text: str
    origin: Origin = "imported"
    angle: Angle | None = None
    granularity: Granularity | None = None
    source_text_id: int | None = None
    parent_id: int | None = None
    hop: int = PydanticField(default=0, ge=0)
    model: str | None = None
    attributes: dict[str, Any] = PydanticField(default_factory=dict)
    external_id: str | None = None

    @field_validator("text")
    @classmethod
    def _text_not_empty(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("persona text is empty")
        return value


class EdgeIn(BaseModel):
    """A relationship to add: persona ids, relation label and tie strength."""

    model_config = ConfigDict(extra="forbid")

    src_id: int
    dst_id: int
    relation: str = PydanticField(min_length=1, max_length=64)
    strength: float = 1.0
