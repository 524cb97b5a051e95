"""Database engines for every SQLModel database of the project (persona stores, run databases).

A plain path means a SQLite file; anything with ``://`` is a SQLAlchemy URL (PostgreSQL for
shared or large stores). Passwords in URLs never reach error messages.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlmodel import create_engine


class DatabaseError(RuntimeError):
    """A database that cannot be opened, explained in one line."""


def database_url(target: str | Path) -> str:
    """A SQLAlchemy URL for a path or URL."""
    text = str(target)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def safe_url(url: str) -> str:
    """The URL with any password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid database URL>"


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(target: str | Path, create_parent: bool = True, must_exist: bool = False) -> Engine:
    """An engine for ``target``, checked by connecting once.

    Args:
        target: A path (SQLite) or SQLAlchemy URL.
        create_parent: Create the folder of a new SQLite file.
        must_exist: For readers: a missing SQLite file is an error, not a new empty database.

    Raises:
        DatabaseError: The URL is malformed or the database cannot be reached.
    """
    url = database_url(target)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError(f"not a database path or URL: {target!r}") from None
    is_sqlite = parsed.get_backend_name() == "sqlite"
    in_memory = not parsed.database or parsed.database == ":memory:"
    if is_sqlite and must_exist and not in_memory and not Path(parsed.database).is_file():
        raise DatabaseError(f"no database at {parsed.database}")
    if is_sqlite and parsed.database and create_parent and not must_exist:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    kwargs = {"connect_args": {"check_same_thread": False}} if is_sqlite else {}
    try:
        engine = create_engine(url, **kwargs)
    except (ArgumentError, ImportError) as exc:
        raise DatabaseError(f"cannot use database {safe_url(url)}: {exc}") from None
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseError(f"cannot open database {safe_url(url)}: {reason}") from None
    return engine
