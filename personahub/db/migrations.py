"""Alembic migrations of the project's databases, run in code whenever a database is opened.

Each schema (the persona store, the run database) has its own migration environment: a folder
with ``env.py``, ``script.py.mako`` and ``versions/``, shipped as package data, and its own
version table, so both schemas can share one PostgreSQL database. No ``alembic.ini`` is
involved: :func:`upgrade` builds the Alembic ``Config`` in code and hands ``env.py`` the
connection.

Databases created before migrations existed (by ``create_all``) have no version table. The
baseline revision of each environment creates only what is missing, so upgrading such a
database from nothing adopts it: its data stays, missing tables and columns are added, and the
version table is written.

Developers add a revision with ``python -m personahub.store.migrations revision -m "..."`` or
``python -m sandbox.migrations revision -m "..."`` (see docs/migrations.md).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection, Engine

from personahub.db.engine import DatabaseError

if TYPE_CHECKING:  # Alembic is imported only when a migration actually runs.
    from alembic.config import Config


@dataclass(frozen=True)
class Schema:
    """One migration environment: where its scripts live and which tables it owns.

    Attributes:
        name: Human-readable name, for messages.
        script_location: The environment folder (``env.py``, ``versions/``).
        version_table: Alembic's version table for this schema.
        metadata: The models' metadata (may hold other schemas' tables too).
        tables: Names of the tables this schema owns; comparisons ignore all others, so
            two schemas in one database never see each other's tables as strays.
    """

    name: str
    script_location: Path
    version_table: str
    metadata: MetaData
    tables: frozenset[str]

    def include_name(self, name: str | None, type_: str, _parents: Any) -> bool:
        """Alembic hook: reflect only this schema's tables."""
        return type_ != "table" or name in self.tables

    def include_object(self, obj: Any, name: str | None, type_: str, *_rest: Any) -> bool:
        """Alembic hook: compare only this schema's tables of the shared metadata."""
        return type_ != "table" or name in self.tables

    def context_options(self) -> dict[str, Any]:
        """Options for ``MigrationContext``/``EnvironmentContext.configure``."""
        return {
            "version_table": self.version_table,
            "include_name": self.include_name,
            "include_object": self.include_object,
            "compare_type": True,
            # SQLite alters a table by copying it; batch mode does that on SQLite only.
            "render_as_batch": True,
            "render_item": _render_item,
        }


def _render_item(type_: str, obj: Any, _context: Any) -> str | bool:
    # SQLModel's column types are a VARCHAR and a timezone-aware DATETIME underneath; revision
    # files name those plainly rather than import sqlmodel.
    from sqlmodel.sql import sqltypes

    if type_ == "type" and isinstance(obj, sqltypes.AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    utc = getattr(sqltypes, "UTCDateTime", None)  # newer SQLModel releases only
    if type_ == "type" and utc is not None and isinstance(obj, utc):
        return "sa.DateTime(timezone=True)"
    return False


def _config(schema: Schema, connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    # ConfigParser would read "%" in a path as interpolation.
    config.set_main_option("script_location", str(schema.script_location).replace("%", "%%"))
    config.attributes["schema"] = schema
    config.attributes["connection"] = connection
    return config


@functools.cache
def _revisions(schema: Schema) -> tuple[str | None, frozenset[str]]:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(_config(schema))
    return scripts.get_current_head(), frozenset(r.revision for r in scripts.walk_revisions())


def head(schema: Schema) -> str | None:
    """The newest revision of ``schema`` (read once per process)."""
    return _revisions(schema)[0]


def _lock_key(schema: Schema) -> int:
    digest = hashlib.sha256(schema.version_table.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def current(connection: Connection, schema: Schema) -> str | None:
    """The revision a database is at (None: no version table yet)."""
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"version_table": schema.version_table})
    return context.get_current_revision()


def upgrade(engine: Engine, schema: Schema) -> None:
    """Bring the database to the newest revision; a no-op (one query) when it is there.

    A database without a version table is either new or made by ``create_all`` before
    migrations existed; the baseline revision handles both.
    """
    from alembic import command

    target, known = _revisions(schema)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Processes opening one new database together would each create the tables;
            # the lock (released at commit) makes the later ones find them at head.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(schema)}
            )
        found = current(connection, schema)
        if found == target:
            return
        if found is not None and found not in known:
            raise DatabaseError(
                f"the {schema.name} is at schema revision {found}, newer than this version of "
                f"persona-sandbox knows (newest {target}); open it with a newer version"
            )
        command.upgrade(_config(schema, connection), "head")


def differences(engine: Engine, schema: Schema) -> list[Any]:
    """What differs between the database and the models (empty when they agree).

    Alembic's ``compare_metadata`` restricted to the schema's own tables: a column added to a
    model without a revision shows up here.
    """
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts=schema.context_options())
        return list(compare_metadata(context, schema.metadata))


def run_environment() -> None:
    """The body of every ``env.py``: migrate the connection :func:`upgrade` passed in."""
    from alembic import context

    schema: Schema | None = context.config.attributes.get("schema")
    connection: Connection | None = context.config.attributes.get("connection")
    if schema is None or connection is None:
        raise SystemExit(
            "this migration environment runs from code (personahub.db.migrations.upgrade), "
            "not from the alembic command line"
        )
    context.configure(
        connection=connection, target_metadata=schema.metadata, **schema.context_options()
    )
    with context.begin_transaction():
        context.run_migrations()


def _next_rev_id(schema: Schema) -> str:
    from alembic.script import ScriptDirectory

    numbers = [
        int(rev.revision)
        for rev in ScriptDirectory.from_config(_config(schema)).walk_revisions()
        if rev.revision.isdigit()
    ]
    return f"{max(numbers, default=0) + 1:04d}"


def new_revision(schema: Schema, message: str, autogenerate: bool = True) -> Path:
    """Write a new revision file: the models' changes since head, found by autogenerate on a
    scratch SQLite database brought to head.

    Returns:
        The path of the new revision file (review it before committing).
    """
    from alembic import command
    from sqlmodel import create_engine

    with tempfile.TemporaryDirectory(prefix="migrations-") as folder:
        engine = create_engine(f"sqlite:///{folder}/scratch.db")
        upgrade(engine, schema)
        with engine.begin() as connection:
            script = command.revision(
                _config(schema, connection),
                message=message,
                autogenerate=autogenerate,
                rev_id=_next_rev_id(schema),
            )
        engine.dispose()
    _revisions.cache_clear()
    scripts = script if isinstance(script, list) else [script]
    return Path(scripts[0].path)  # type: ignore[union-attr]


def _tidy(path: Path) -> None:
    # Alembic writes its own quoting and import order; the project's style check would fail
    # on the new file. Best effort: without ruff the file is merely unformatted.
    for command in (["format", "-q"], ["check", "-q", "--fix"]):
        subprocess.run([sys.executable, "-m", "ruff", *command, str(path)], check=False)


def _describe(diffs: Iterable[Any]) -> list[str]:
    return [str(diff) for diff in diffs]


def main(schema: Schema, argv: Sequence[str] | None = None) -> None:
    """Developer commands of one migration environment (``python -m <package>.migrations``).

    ``revision -m MESSAGE`` writes a new revision from the models' changes; ``check [URL]``
    compares a database (a scratch SQLite one at head by default) with the models; ``upgrade
    URL`` migrates a database to head.
    """
    from personahub.db.engine import make_engine

    parser = argparse.ArgumentParser(description=f"migrations of the {schema.name}")
    commands = parser.add_subparsers(dest="command", required=True)
    rev = commands.add_parser("revision", help="write a new revision from the models' changes")
    rev.add_argument("-m", "--message", required=True)
    rev.add_argument("--empty", action="store_true", help="no autogenerate: an empty revision")
    chk = commands.add_parser("check", help="compare a database at head with the models")
    chk.add_argument("url", nargs="?", help="path or SQLAlchemy URL (default: a scratch SQLite)")
    upg = commands.add_parser("upgrade", help="migrate a database to the newest revision")
    upg.add_argument("url")
    args = parser.parse_args(argv)

    if args.command == "revision":
        path = new_revision(schema, args.message, autogenerate=not args.empty)
        _tidy(path)
        print(f"wrote {path}; review it, then run the schema test (tests/test_migrations.py)")
        return
    with tempfile.TemporaryDirectory(prefix="migrations-") as folder:
        url = getattr(args, "url", None) or f"{folder}/scratch.db"
        engine = make_engine(url)
        upgrade(engine, schema)
        if args.command == "upgrade":
            print(f"{engine.url.render_as_string(hide_password=True)}: at {head(schema)}")
        else:
            found = _describe(differences(engine, schema))
            engine.dispose()
            for line in found:
                print(line)
            if found:
                raise SystemExit(f"{len(found)} difference(s) between the models and migrations")
            print(f"{schema.name}: migrations match the models (head {head(schema)})")
