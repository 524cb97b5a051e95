"""Database engines for every SQLModel database of the project (persona stores, run databases).

A plain path means a SQLite file; anything with ``://`` is a SQLAlchemy URL (PostgreSQL for
shared or large stores; ``postgresql://`` uses the psycopg 3 driver). Passwords in URLs never
reach error messages.

Both backends store the same values: PostgreSQL sessions run in UTC, so aware UTC timestamps
land in ``TIMESTAMP`` columns as the same wall time SQLite keeps, JSON written to
PostgreSQL turns non-finite floats (which its ``json`` type rejects) into ``null``, and NUL
characters are dropped from every text written (PostgreSQL text cannot hold them, so one in a
persona or a model's reply would fail the whole commit there).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import BigInteger, Integer, Table, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.dml import Insert
from sqlmodel import Session, create_engine

from personahub.urls import mask_url

T = TypeVar("T")

BIG_ID = BigInteger().with_variant(Integer(), "sqlite")
"""Type of autoincrement ids and of the columns that reference them: 64-bit on PostgreSQL (a
billion-persona store or a million-agent run outgrows 32-bit sequences), plain ``INTEGER`` on
SQLite, where only ``INTEGER PRIMARY KEY`` is the autoincrementing rowid."""

# deadlock_detected, serialization_failure: PostgreSQL aborted the transaction, a rerun succeeds.
_RERUN_SQLSTATES = frozenset({"40P01", "40001"})

# SQLAlchemy's bare "postgresql" means psycopg2; this project ships psycopg 3.
_POSTGRES_ALIASES = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}


class DatabaseError(RuntimeError):
    """A database that cannot be opened, explained in one line."""


def database_url(target: str | Path) -> str:
    """A SQLAlchemy URL for a path or URL."""
    text = str(target)
    if "://" in text:
        scheme, rest = text.split("://", 1)
        return f"{_POSTGRES_ALIASES.get(scheme, scheme)}://{rest}"
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def safe_url(url: str) -> str:
    """The database URL with any password hidden (:func:`personahub.urls.mask_url`)."""
    try:
        make_url(url)
    except ArgumentError:
        return "<invalid database URL>"
    return mask_url(url)


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _postgres_session(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("SET TIME ZONE 'UTC'")
    cursor.close()
    # A SET inside a transaction that is later rolled back would be undone.
    dbapi_connection.commit()


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {k: _without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_without_nul(v) for v in value)
    return value


def _drop_nul(
    _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
) -> tuple[str, Any]:
    """``before_cursor_execute``: the statement's parameters without NUL characters. JSON
    values arrive here serialised, with NUL escaped as ``\\u0000``, which both backends keep."""
    # repr() escapes a NUL as \x00 in C; the walk in Python runs only when it may find one.
    if "\\x00" not in repr(parameters):
        return statement, parameters
    return statement, _without_nul(parameters)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _postgres_json(value: Any) -> str:
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:  # NaN or infinity somewhere: rare, so only then walk the value
        return json.dumps(_finite(value), allow_nan=False)


def insert_ignoring(table: Table, dialect_name: str, unique: Sequence[str]) -> Insert:
    """An INSERT that skips rows clashing with the unique key ``unique`` instead of failing.

    Concurrent writers to one PostgreSQL store (several pipeline workers) may insert the same
    row between one's existence check and its insert; ``ON CONFLICT DO NOTHING`` makes that
    a skipped row rather than an aborted batch. Other dialects get a plain INSERT.
    """
    if dialect_name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(unique))
    if dialect_name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(unique))
    return table.insert()


def insert_new(
    session: Session, table: Table, rows: list[dict[str, Any]], unique: Sequence[str]
) -> list[Any]:
    """Insert ``rows`` in order, skipping those whose ``unique`` key is stored already.

    On PostgreSQL the ids are drawn from the table's sequence first, in input order, and the
    rows are then inserted sorted by their unique key. Concurrent writers with overlapping
    rows thus lock the unique index in one common order and cannot deadlock, while ids still
    follow the input order, as on SQLite.

    Returns:
        The ``id`` of every inserted row (skipped rows have none).
    """
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        sequence = session.execute(
            text("SELECT pg_get_serial_sequence(:table, 'id')"), {"table": table.name}
        ).scalar_one()
        ids = session.execute(
            text("SELECT nextval(CAST(:sequence AS regclass)) FROM generate_series(1, :n)"),
            {"sequence": sequence, "n": len(rows)},
        ).scalars()
        rows = [{**row, "id": new_id} for row, new_id in zip(rows, ids, strict=True)]
        rows.sort(key=lambda row: tuple(row[column] for column in unique))
    statement = insert_ignoring(table, dialect, unique).returning(table.c.id)
    return list(session.execute(statement, rows).scalars())


def write_transaction(engine: Engine, work: Callable[[Session], T], attempts: int = 6) -> T:
    """Run ``work(session)`` and commit, rerunning it when PostgreSQL aborts it as a deadlock.

    Writers inserting overlapping unique keys in different orders (several pipeline workers
    filling one store) can deadlock; PostgreSQL then aborts one of them, and rerunning that one
    after a short random pause succeeds. ``work`` must be safe to run again from the start.

    Raises:
        SQLAlchemyError: Any other database error, or the last deadlock.
    """
    for attempt in range(attempts):
        try:
            with Session(engine, expire_on_commit=False) as session:
                result = work(session)
                session.commit()
                return result
        except DBAPIError as exc:
            state = getattr(exc.orig, "sqlstate", None)
            if state not in _RERUN_SQLSTATES or attempt == attempts - 1:
                raise
            time.sleep(random.uniform(0.005, 0.02) * 2**attempt)
    raise AssertionError("unreachable")


def make_engine(target: str | Path, create_parent: bool = True, must_exist: bool = False) -> Engine:
    """An engine for ``target``, checked by connecting once.

    Args:
        target: A path (SQLite) or SQLAlchemy URL.
        create_parent: Create the folder of a new SQLite file given as a path. A
            ``sqlite:///`` URL's folder must exist: a typo in a URL never creates folders.
        must_exist: For readers: a missing SQLite file is an error, not a new empty database.

    Raises:
        DatabaseError: The URL is malformed or the database cannot be reached.
    """
    is_url = "://" in str(target)
    if not is_url and ":" in str(target):
        # `::garbage::` or `postgres:/x` would otherwise become a SQLite file of that name.
        raise DatabaseError(
            f"not a database path or URL: {str(target)!r} (a URL needs scheme://, "
            "e.g. sqlite:///runs/run.db; a path has no ':')"
        )
    url = database_url(target)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError(f"not a database path or URL: {target!r}") from None
    is_sqlite = parsed.get_backend_name() == "sqlite"
    is_postgres = parsed.get_backend_name() == "postgresql"
    on_disk = parsed.database if parsed.database not in (None, "", ":memory:") else None
    if is_sqlite and must_exist and on_disk and not Path(on_disk).is_file():
        raise DatabaseError(f"no database at {on_disk}")
    if is_sqlite and on_disk and create_parent and not must_exist and not is_url:
        Path(on_disk).parent.mkdir(parents=True, exist_ok=True)
    elif is_sqlite and on_disk and not Path(on_disk).parent.is_dir():
        folder = Path(on_disk).parent
        raise DatabaseError(f"cannot open database {safe_url(url)}: no folder {folder}")
    kwargs: dict[str, Any] = {}
    if is_sqlite:
        kwargs["connect_args"] = {"check_same_thread": False}
    if is_postgres:
        # pool_pre_ping: a store outlives server restarts and idle-connection reaping.
        kwargs.update(json_serializer=_postgres_json, pool_pre_ping=True)
    try:
        engine = create_engine(url, **kwargs)
    except (ArgumentError, ImportError) as exc:
        raise DatabaseError(f"cannot use database {safe_url(url)}: {exc}") from None
    event.listen(engine, "before_cursor_execute", _drop_nul, retval=True)
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
    if is_postgres:
        event.listen(engine, "connect", _postgres_session)
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        lines = str(exc.orig or exc).strip().splitlines()
        reason = lines[0] if lines else type(exc.orig or exc).__name__
        if parsed.password:
            # Drivers may quote the connection string back (a malformed option, say).
            reason = reason.replace(str(parsed.password), "***")
        raise DatabaseError(f"cannot open database {safe_url(url)}: {reason}") from None
    return engine
