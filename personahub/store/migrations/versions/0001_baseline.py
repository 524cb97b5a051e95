"""Baseline: the persona store as ``create_all`` made it before migrations existed.

Creates only the tables that are missing, so a store made by ``create_all`` (no version table)
is adopted with its data, and a new one is created whole. On PostgreSQL an adopted store's
INTEGER ids (and their sequences) become BIGINT.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def _tables() -> dict[str, list[sa.schema.SchemaItem]]:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    return {
        "source_text": [
            sa.Column("id", big_id, nullable=False),
            sa.Column("content_hash", sa.String(length=64), nullable=False),
            sa.Column("origin", sa.String(), nullable=False),
            sa.Column("text", sa.String(), nullable=True),
            sa.Column("created", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        ],
        "persona": [
            sa.Column("id", big_id, nullable=False),
            sa.Column("text", sa.String(), nullable=False),
            sa.Column("norm_hash", sa.String(length=64), nullable=False),
            sa.Column("origin", sa.String(length=32), nullable=False),
            sa.Column("angle", sa.String(length=16), nullable=True),
            sa.Column("granularity", sa.String(length=16), nullable=True),
            sa.Column("source_text_id", big_id, nullable=True),
            sa.Column("parent_id", big_id, nullable=True),
            sa.Column("hop", sa.Integer(), nullable=False),
            sa.Column("model", sa.String(), nullable=True),
            sa.Column("attributes", sa.JSON(), nullable=True),
            sa.Column("external_id", sa.String(), nullable=True),
            sa.Column("created", sa.DateTime(timezone=True), nullable=False),
            sa.ForeignKeyConstraint(["parent_id"], ["persona.id"], ondelete="SET NULL"),
            sa.ForeignKeyConstraint(["source_text_id"], ["source_text.id"], ondelete="SET NULL"),
            sa.PrimaryKeyConstraint("id"),
        ],
        "persona_edge": [
            sa.Column("id", big_id, nullable=False),
            sa.Column("src_id", big_id, nullable=False),
            sa.Column("dst_id", big_id, nullable=False),
            sa.Column("relation", sa.String(length=64), nullable=False),
            sa.Column("strength", sa.Float(), nullable=False),
            sa.ForeignKeyConstraint(["dst_id"], ["persona.id"], ondelete="CASCADE"),
            sa.ForeignKeyConstraint(["src_id"], ["persona.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("src_id", "dst_id", "relation", name="uq_edge"),
        ],
    }


_INDEXES: dict[str, list[tuple[str, list[str], bool]]] = {
    "source_text": [("ix_source_text_content_hash", ["content_hash"], True)],
    "persona": [
        ("ix_persona_external_id", ["external_id"], False),
        ("ix_persona_hop", ["hop"], False),
        ("ix_persona_norm_hash", ["norm_hash"], True),
        ("ix_persona_origin", ["origin"], False),
        ("ix_persona_parent_id", ["parent_id"], False),
        ("ix_persona_source_text_id", ["source_text_id"], False),
    ],
    "persona_edge": [
        ("ix_persona_edge_dst_id", ["dst_id"], False),
        ("ix_persona_edge_src_id", ["src_id"], False),
    ],
}


def _widen_ids(inspector: sa.Inspector, name: str, items: list[sa.schema.SchemaItem]) -> None:
    """64-bit ids on PostgreSQL for a table made while ids were INTEGER (int4 column and
    sequence, which a billion rows would exhaust); SQLite's INTEGER is 64-bit already."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    found = {column["name"]: column["type"] for column in inspector.get_columns(name)}
    for item in items:
        if not isinstance(item, sa.Column) or not isinstance(item.type, sa.BigInteger):
            continue
        if isinstance(found.get(item.name), sa.BigInteger):
            continue
        op.alter_column(name, item.name, type_=sa.BigInteger(), existing_nullable=item.nullable)
        sequence = bind.execute(
            sa.text("SELECT pg_get_serial_sequence(:table, :column)"),
            {"table": name, "column": item.name},
        ).scalar()
        if sequence:
            op.execute(f"ALTER SEQUENCE {sequence} AS bigint")


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    existing = set(inspector.get_table_names())
    for name, items in _tables().items():
        if name in existing:
            _widen_ids(inspector, name, items)
            continue
        op.create_table(name, *items)
        for index, columns, unique in _INDEXES[name]:
            op.create_index(index, name, columns, unique=unique)


def downgrade() -> None:
    for name in reversed(list(_tables())):
        op.drop_table(name)
