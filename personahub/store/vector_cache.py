"""One embedder's stored vectors as a memory-mapped matrix file, never stale.

A similarity search scores every stored vector. Reading them from the database costs far
more than scoring them (about 2.6 s for 200,000 MiniLM rows on SQLite), so the first search
writes them to two ``.npy`` files (persona ids and float32 rows, in id order) and later
searches map those files instead.

Staleness is decided by the store, not by guesswork: triggers replace the random token of
``persona_vector_state`` in the same transaction as any insert, update or delete of a
vector (store revision ``0003``). The files are named after the token they were built
under, so they are used only while that token is current; any change to the vectors (of any
embedder, a persona's deletion included) makes the next search rebuild them. The token is
read *before* the vectors: a change that lands in between gives a newer file under the
older token, which the next search rebuilds, never an older file under the newer token.

Where the files go: next to a SQLite store (``personas.db`` -> ``personas.db-vectors/``),
so they go with the store and a scratch store's folder takes them along; for a server
database, the user cache folder under a hash of the (password-masked) URL. An in-memory
SQLite store has no file cache. The rows are float32 like the table's, so scores are the
same as read from the database.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from personahub.store.models import PersonaVectorState

if TYPE_CHECKING:
    from personahub.store.vectors import StoredVectors


def cache_root() -> Path:
    """The user cache folder for server stores' vector files."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "persona-sandbox" / "vectors"


def cache_folder(vectors: StoredVectors) -> Path | None:
    """Where the store's vector files live (None: an in-memory store, no files)."""
    url = vectors.store.engine.url
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            return None
        database = Path(url.database)
        return database.with_name(database.name + "-vectors")
    return cache_root() / hashlib.sha256(vectors.store.url.encode()).hexdigest()[:16]


def _file_key(embedder_id: str) -> str:
    # Embedder ids are free text (tests name them); keep a readable, file-safe prefix and a
    # hash so two ids never share files.
    readable = re.sub(r"[^A-Za-z0-9._-]", "_", embedder_id)[:60]
    return f"{readable}-{hashlib.sha256(embedder_id.encode()).hexdigest()[:8]}"


def state_token(vectors: StoredVectors) -> str | None:
    """The store's current vector-state token (None if its row is missing)."""
    with vectors.store.session() as session:
        row = session.get(PersonaVectorState, 1)
        return None if row is None else row.token


def _read_all(vectors: StoredVectors) -> tuple[np.ndarray, np.ndarray]:
    pages = list(vectors.scan())
    if not pages:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
    return np.concatenate([p[0] for p in pages]), np.concatenate([p[1] for p in pages])


def _save(array: np.ndarray, target: Path) -> None:
    # Written beside, then renamed: a reader never maps half a file.
    handle, partial = tempfile.mkstemp(dir=target.parent, suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as out:
            np.save(out, array)
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def matrix(vectors: StoredVectors) -> tuple[np.ndarray, np.ndarray]:
    """All stored vectors of ``vectors``' embedder: ``(ids, rows)`` in persona id order.

    Mapped from the store's vector files when they match the current state token; else read
    from the database and written to new files (best effort: a folder that cannot be
    written only costs the next search the read again).
    """
    folder = cache_folder(vectors)
    token = state_token(vectors) if folder is not None else None
    if folder is None or token is None:
        return _read_all(vectors)
    key = _file_key(vectors.embedder_id)
    ids_file, rows_file = folder / f"{key}-{token}.ids.npy", folder / f"{key}-{token}.rows.npy"
    if ids_file.exists() and rows_file.exists():
        with contextlib.suppress(OSError, ValueError):
            ids = np.load(ids_file, mmap_mode="r")
            rows = np.load(rows_file, mmap_mode="r")
            if len(ids) == len(rows):
                return ids, rows
    ids, rows = _read_all(vectors)
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        _save(ids, ids_file)
        _save(rows, rows_file)
        # Files of this embedder under older tokens can never be current again.
        ours = re.compile(re.escape(key) + r"-[0-9a-f]+\.(ids|rows)\.npy")
        for old in folder.iterdir():
            if ours.fullmatch(old.name) and old not in (ids_file, rows_file):
                old.unlink(missing_ok=True)
    return ids, rows
