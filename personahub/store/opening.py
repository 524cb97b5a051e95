"""Open "some personas" given as a store or a file, the same way for every command.

A persona store (a SQLite file or an SQLAlchemy URL) is opened in place. A JSONL, CSV or
Parquet file is imported into a scratch store first, so that every caller filters and
samples with the same store code.
"""

from __future__ import annotations

from pathlib import Path

from personahub.store.connection import StoreError
from personahub.store.io import import_file
from personahub.store.store import PersonaStore

STORE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def is_store(source: str) -> bool:
    """True for an SQLAlchemy URL or a SQLite store path."""
    return "://" in source or Path(source).suffix in STORE_SUFFIXES


def open_personas(
    source: str | Path,
    scratch: Path,
    text_field: str | None = None,
    edges: str | Path | None = None,
) -> PersonaStore:
    """A store holding the personas of ``source``.

    Args:
        source: Store path or URL, or a JSONL/CSV/Parquet persona file.
        scratch: Folder for the scratch store of a file source (the caller removes it).
        text_field: The persona text field of a file (auto-detected when None).
        edges: A JSONL edges file to import with a file source.

    Raises:
        StoreError: A missing file, an unreachable store, or a file without personas.
    """
    source = str(source)
    if "://" in source:
        return PersonaStore(source)
    path = Path(source)
    if not path.exists():
        raise StoreError(f"file not found: {path}")
    if path.suffix in STORE_SUFFIXES:
        return PersonaStore(path)
    if edges is not None and not Path(edges).exists():
        raise StoreError(f"edges file not found: {edges}")
    store = PersonaStore(scratch / "personas.db")
    report = import_file(store, path, text_field=text_field, edges_path=edges)
    if report.added == 0:
        store.close()
        raise StoreError(f"no personas could be read from {path}")
    return store
