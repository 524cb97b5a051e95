"""Experiments: ``experiment_runs`` says which arm, seed and sweep point each run is.

An experiment (``sandbox experiment``) keeps all its runs in one run database; this table
groups them. Databases of plain runs leave it empty.

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    op.create_table(
        "experiment_runs",
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("experiment", sa.String(), nullable=False),
        sa.Column("arm", sa.String(), nullable=False),
        sa.Column("control", sa.Boolean(), nullable=False),
        sa.Column("seed_index", sa.Integer(), nullable=False),
        sa.Column("point", sa.JSON(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"]),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_index("ix_experiment_runs_experiment", "experiment_runs", ["experiment"])


def downgrade() -> None:
    op.drop_index("ix_experiment_runs_experiment", table_name="experiment_runs")
    op.drop_table("experiment_runs")
