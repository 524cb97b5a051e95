"""The store's connection: its engine (migrated at open), sessions and write transactions
whose database errors surface as one-line :class:`StoreError`, and chunked ``IN (...)`` lists."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session

from personahub.db.engine import (
    DatabaseError,
    database_url,
    make_engine,
    safe_url,
    write_transaction,
)
from personahub.db.migrations import upgrade
from personahub.store.models import STORE_SCHEMA

T = TypeVar("T")
# Well under SQLite's bound-parameter limit, and a sane size for IN (...) lists elsewhere.
_IN_CHUNK = 500


class StoreError(RuntimeError):
    """A store problem worded as one line for the user."""


def _one_line(exc: BaseException) -> str:
    """The first line of a database error's own message."""
    # SQLAlchemy appends a background link and the SQL; the driver's message is enough.
    inner = getattr(exc, "orig", None) or exc
    text = str(inner).strip().splitlines()
    return text[0] if text else type(inner).__name__


def chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> Iterator[Sequence[Any]]:
    """``items`` in slices of at most ``size``, for ``IN (...)`` lists."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class StoreConnection:
    """A store database, opened and migrated; see :class:`~personahub.store.store.PersonaStore`."""

    def __init__(self, url_or_path: str | Path = "personas.db") -> None:
        self.url = safe_url(database_url(url_or_path))
        try:
            self.engine: Engine = make_engine(url_or_path)
            upgrade(self.engine, STORE_SCHEMA)
        except DatabaseError as exc:
            raise StoreError(str(exc)) from None
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"cannot open store {self.url}: {_one_line(exc)}") from None

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    def _error(self, exc: SQLAlchemyError) -> StoreError:
        if isinstance(exc, IntegrityError):
            return StoreError(f"store constraint violated: {_one_line(exc)}")
        return StoreError(f"store error ({self.url}): {_one_line(exc)}")

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose database errors surface as :class:`StoreError`."""
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                yield session
        except SQLAlchemyError as exc:
            raise self._error(exc) from None

    def _write(self, work: Callable[[Session], T]) -> T:
        """A write transaction, rerun after a deadlock with a concurrent writer."""
        try:
            return write_transaction(self.engine, work)
        except SQLAlchemyError as exc:
            raise self._error(exc) from None
