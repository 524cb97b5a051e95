"""Vector state token: a random token replaced by triggers on every change to the vectors.

Table ``persona_vector_state`` holds one row. Triggers on ``persona_vector`` replace its
``token`` whenever vectors are inserted, updated or deleted (a persona's deletion cascading
to its vectors included), in the same transaction. The similarity search keeps a matrix file
of one embedder's vectors and trusts it only while the token it was built under is current.

SQLite has row triggers only: each changed row writes the token (cheap next to the row).
PostgreSQL writes it once per statement that changed a row (statement triggers with
transition tables, so a statement that matched nothing leaves the token alone).

Like the earlier revisions it creates the table only when missing, so a store made by
``create_all`` from the current models is adopted (and gains its row and triggers).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

_SQLITE_TOKEN = "lower(hex(randomblob(16)))"
_POSTGRES_TOKEN = "md5(random()::text || clock_timestamp()::text)"
_EVENTS = ("insert", "update", "delete")


def upgrade() -> None:
    bind = op.get_bind()
    if "persona_vector_state" not in sa.inspect(bind).get_table_names():
        op.create_table(
            "persona_vector_state",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("token", sa.String(length=32), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
    token = _POSTGRES_TOKEN if bind.dialect.name == "postgresql" else _SQLITE_TOKEN
    op.execute(
        f"INSERT INTO persona_vector_state (id, token) SELECT 1, {token} "
        "WHERE NOT EXISTS (SELECT 1 FROM persona_vector_state WHERE id = 1)"
    )
    if bind.dialect.name == "postgresql":
        _postgres_triggers()
    else:
        for event in _EVENTS:
            op.execute(
                f"CREATE TRIGGER IF NOT EXISTS persona_vector_{event} AFTER {event.upper()} "
                f"ON persona_vector BEGIN "
                f"UPDATE persona_vector_state SET token = {_SQLITE_TOKEN}; END"
            )


def _postgres_triggers() -> None:
    op.execute(
        "CREATE OR REPLACE FUNCTION persona_vector_changed() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        "IF EXISTS (SELECT 1 FROM changed) THEN "
        f"UPDATE persona_vector_state SET token = {_POSTGRES_TOKEN}; "
        "END IF; RETURN NULL; END $$"
    )
    for event in _EVENTS:
        rows = "OLD" if event == "delete" else "NEW"
        op.execute(f"DROP TRIGGER IF EXISTS persona_vector_{event} ON persona_vector")
        op.execute(
            f"CREATE TRIGGER persona_vector_{event} AFTER {event.upper()} ON persona_vector "
            f"REFERENCING {rows} TABLE AS changed FOR EACH STATEMENT "
            "EXECUTE FUNCTION persona_vector_changed()"
        )


def downgrade() -> None:
    for event in _EVENTS:
        suffix = " ON persona_vector" if op.get_bind().dialect.name == "postgresql" else ""
        op.execute(f"DROP TRIGGER IF EXISTS persona_vector_{event}{suffix}")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS persona_vector_changed()")
    op.drop_table("persona_vector_state")
