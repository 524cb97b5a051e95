"""Interactions keep what the agent saw: ``interactions.observations`` (JSON list).

Each forecast interaction records the observations its request showed the agent as new
(step, kind, source, content, strength, sender), so the report's transcripts need not parse
the rendered prompt. Rows written before this revision hold NULL, which reads as none.

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
    # A nullable column: SQLite adds it in place (no table copy), whatever the run's size.
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("observations", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_column("observations")
