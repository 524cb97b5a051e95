"""Baseline: the run database as ``create_all`` made it before migrations existed.

Creates only what is missing, so a run database made by ``create_all`` (no version table) is
adopted with its data: tables added after it was made (``dialogue_turns``) are created, and the
columns added since (``messages.source``, ``agents.system_prompt``, ``agents.profile``) are
added; on PostgreSQL, INTEGER ids (and their sequences) become BIGINT. A new database is created
whole.

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
    run_fk = sa.ForeignKeyConstraint
    return {
        "runs": [
            sa.Column("id", sa.String(), nullable=False),
            sa.Column("name", sa.String(), nullable=False),
            sa.Column("scenario_path", sa.String(), nullable=False),
            sa.Column("scenario_yaml", sa.Text(), nullable=True),
            sa.Column("scenario_hash", sa.String(), nullable=False),
            sa.Column("config_hash", sa.String(), nullable=False),
            sa.Column("seed", sa.Integer(), nullable=False),
            sa.Column("backend", sa.String(), nullable=False),
            sa.Column("model", sa.String(), nullable=False),
            sa.Column("llm_config", sa.JSON(), nullable=True),
            sa.Column("status", sa.String(), nullable=False),
            sa.Column("steps_total", sa.Integer(), nullable=False),
            sa.Column("last_step", sa.Integer(), nullable=False),
            sa.Column("rng_state", sa.JSON(), nullable=True),
            sa.Column("usage", sa.JSON(), nullable=True),
            sa.Column("created", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        ],
        "agent_state": [
            sa.Column("run_id", sa.String(), nullable=False),
            sa.Column("agent_id", sa.Integer(), nullable=False),
            sa.Column("step", sa.Integer(), nullable=False),
            sa.Column("state", sa.JSON(), nullable=True),
            run_fk(["run_id"], ["runs.id"]),
            sa.PrimaryKeyConstraint("run_id", "agent_id"),
        ],
        "agents": [
            sa.Column("run_id", sa.String(), nullable=False),
            sa.Column("agent_id", sa.Integer(), nullable=False),
            sa.Column("persona_id", sa.String(), nullable=False),
            sa.Column("persona", sa.Text(), nullable=True),
            sa.Column("attributes", sa.JSON(), nullable=True),
            sa.Column("community", sa.Integer(), nullable=False),
            sa.Column("degree", sa.Integer(), nullable=False),
            sa.Column("system_prompt", sa.Text(), nullable=True),
            sa.Column("profile", sa.JSON(), nullable=True),
            run_fk(["run_id"], ["runs.id"]),
            sa.PrimaryKeyConstraint("run_id", "agent_id"),
        ],
        "dialogue_turns": [
            sa.Column("id", big_id, nullable=False),
            sa.Column("run_id", sa.String(), nullable=False),
            sa.Column("step", sa.Integer(), nullable=False),
            sa.Column("conversation", sa.Integer(), nullable=False),
            sa.Column("turn", sa.Integer(), nullable=False),
            sa.Column("speaker", sa.Integer(), nullable=False),
            sa.Column("listener", sa.Integer(), nullable=False),
            sa.Column("topic", sa.Text(), nullable=True),
            sa.Column("content", sa.Text(), nullable=True),
            sa.Column("prompt_tokens", sa.Integer(), nullable=False),
            sa.Column("completion_tokens", sa.Integer(), nullable=False),
            sa.Column("error_kind", sa.String(), nullable=True),
            sa.Column("error_message", sa.Text(), nullable=True),
            run_fk(["run_id"], ["runs.id"]),
            sa.PrimaryKeyConstraint("id"),
        ],
        "edges": [
            sa.Column("id", big_id, nullable=False),
            sa.Column("run_id", sa.String(), nullable=False),
            sa.Column("src", sa.Integer(), nullable=False),
            sa.Column("dst", sa.Integer(), nullable=False),
            sa.Column("relation", sa.String(), nullable=False),
            sa.Column("strength", sa.Float(), nullable=False),
            run_fk(["run_id"], ["runs.id"]),
            sa.PrimaryKeyConstraint("id"),
        ],
        "interactions": [
            sa.Column("id", big_id, nullable=False),
            sa.Column("run_id", sa.String(), nullable=False),
            sa.Column("step", sa.Integer(), nullable=False),
            sa.Column("agent_id", sa.Integer(), nullable=False),
            sa.Column("messages", sa.JSON(), nullable=True),
            sa.Column("raw_response", sa.Text(), nullable=True),
            sa.Column("parsed", sa.JSON(), nullable=True),
            sa.Column("reaction", sa.Text(), nullable=True),
            sa.Column("post", sa.Text(), nullable=True),
            sa.Column("prompt_tokens", sa.Integer(), nullable=False),
            sa.Column("completion_tokens", sa.Integer(), nullable=False),
            sa.Column("latency_s", sa.Float(), nullable=False),
            sa.Column("retries", sa.Integer(), nullable=False),
            sa.Column("cached", sa.Boolean(), nullable=False),
            sa.Column("error_kind", sa.String(), nullable=True),
            sa.Column("error_message", sa.Text(), nullable=True),
            run_fk(["run_id"], ["runs.id"]),
            sa.PrimaryKeyConstraint("id"),
        ],
        "messages": [
            sa.Column("id", big_id, nullable=False),
            sa.Column("run_id", sa.String(), nullable=False),
            sa.Column("step", sa.Integer(), nullable=False),
            sa.Column("kind", sa.String(), nullable=False),
            sa.Column("src_agent", sa.Integer(), nullable=True),
            sa.Column("dst_agent", sa.Integer(), nullable=False),
            sa.Column("relation", sa.String(), nullable=False),
            sa.Column("source", sa.String(), nullable=False),
            sa.Column("content", sa.Text(), nullable=True),
            run_fk(["run_id"], ["runs.id"]),
            sa.PrimaryKeyConstraint("id"),
        ],
        "step_metrics": [
            sa.Column("run_id", sa.String(), nullable=False),
            sa.Column("step", sa.Integer(), nullable=False),
            sa.Column("metrics", sa.JSON(), nullable=True),
            run_fk(["run_id"], ["runs.id"]),
            sa.PrimaryKeyConstraint("run_id", "step"),
        ],
    }


_INDEXES: dict[str, list[tuple[str, list[str], bool]]] = {
    "dialogue_turns": [
        ("ix_dialogue_turns_run_id", ["run_id"], False),
        ("ix_dialogue_turns_step", ["step"], False),
    ],
    "edges": [("ix_edges_run_id", ["run_id"], False)],
    "interactions": [
        ("ix_interactions_run_id", ["run_id"], False),
        ("ix_interactions_step", ["step"], False),
    ],
    "messages": [("ix_messages_run_id", ["run_id"], False)],
}

# Columns added to the models while create_all made the databases: what the existing rows of
# an older database get. NOT NULL columns need a server default to be added at all.
_LATE_COLUMN_DEFAULTS: dict[tuple[str, str], str | None] = {
    ("messages", "source"): "",
    ("agents", "system_prompt"): None,
    ("agents", "profile"): None,
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
        if name not in existing:
            op.create_table(name, *items)
            for index, columns, unique in _INDEXES.get(name, []):
                op.create_index(index, name, columns, unique=unique)
            continue
        _widen_ids(inspector, name, items)
        present = {column["name"] for column in inspector.get_columns(name)}
        for item in items:
            if not isinstance(item, sa.Column) or item.name in present:
                continue
            default = _LATE_COLUMN_DEFAULTS[(name, item.name)]
            op.add_column(
                name,
                sa.Column(item.name, item.type, nullable=item.nullable, server_default=default),
            )


def downgrade() -> None:
    for name in reversed(list(_tables())):
        op.drop_table(name)
