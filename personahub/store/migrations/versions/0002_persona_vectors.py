"""Persona vectors: each persona's embedding per embedder, computed once and reused.

A new table only; existing stores gain it empty and fill it lazily (``personahub embed``,
or the first command that needs vectors). Like the baseline, it creates the table only when
it is missing, so a store made by ``create_all`` from the current models is adopted too
(with 64-bit persona ids on PostgreSQL).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    if "persona_vector" in inspector.get_table_names():
        # Adopted: on PostgreSQL its persona_id may be INTEGER, like the ids it points at
        # were before the baseline widened them.
        found = {c["name"]: c["type"] for c in inspector.get_columns("persona_vector")}
        if bind.dialect.name == "postgresql" and not isinstance(
            found.get("persona_id"), sa.BigInteger
        ):
            op.alter_column(
                "persona_vector", "persona_id", type_=sa.BigInteger(), existing_nullable=False
            )
        return
    op.create_table(
        "persona_vector",
        sa.Column("embedder", sa.String(length=80), nullable=False),
        sa.Column(
            "persona_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["persona_id"], ["persona.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("embedder", "persona_id"),
    )
    with op.batch_alter_table("persona_vector", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_persona_vector_persona_id"), ["persona_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("persona_vector", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_persona_vector_persona_id"))

    op.drop_table("persona_vector")
