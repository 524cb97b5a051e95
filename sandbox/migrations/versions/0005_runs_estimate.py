"""Runs keep their cost estimate: ``runs.estimate`` (JSON).

A run stores what it was expected to spend (model calls, prompt and completion tokens,
money; ``sandbox.estimate``) when it starts, so its summary and report show the actual
figures beside the estimate. Runs written before this revision hold NULL: no estimate.

Revision ID: 0005
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    # A nullable column: SQLite adds it in place (no table copy).
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("estimate", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("estimate")
