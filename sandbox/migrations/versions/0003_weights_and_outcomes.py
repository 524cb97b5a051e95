"""Raking weights and real outcomes: ``agents.weight`` and the ``outcomes`` table.

``agents.weight`` holds each agent's raking weight when the scenario's ``population.match``
sets target marginals (NULL otherwise, and in rows written before this revision: unweighted).
``outcomes`` holds what really happened for a question of a run (``sandbox resolve``): the
real distribution, the forecast it is scored against, where it came from, who recorded it and
when; one row per run and question.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    # A nullable column: SQLite adds it in place (no table copy), whatever the run's size.
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("weight", sa.Float(), nullable=True))
    op.create_table(
        "outcomes",
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("question", sa.String(), nullable=False),
        sa.Column("actual", sa.JSON(), nullable=True),
        sa.Column("predicted", sa.JSON(), nullable=True),
        sa.Column("n", sa.Integer(), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("resolved_by", sa.String(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("run_id", "question"),
    )


def downgrade() -> None:
    op.drop_table("outcomes")
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_column("weight")
