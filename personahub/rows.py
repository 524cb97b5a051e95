"""Row readers for tabular and JSONL inputs, and the text hash every layer shares.

:func:`iter_rows` streams JSONL, CSV and Parquet (one record batch at a time) as
:class:`RawRow` values: parsed data or the reason a row is malformed, with its 1-based line.
The build pipeline's corpus reader (:mod:`personahub.build.sources`) and the persona store's
importer both read files through it. :func:`text_hash` is the exact-duplicate key of the
persona store and of input texts.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TEXT_FIELD_CANDIDATES: tuple[str, ...] = ("text", "content", "body", "persona", "input persona")
TEXT_SUFFIXES = (".txt", ".md")
_PARQUET_BATCH_ROWS = 4096
_WS = re.compile(r"\s+")


class SourceError(ValueError):
    """A problem with an input source, worded as one line for the user."""


@dataclass(frozen=True, slots=True)
class RawRow:
    """One row of a tabular/JSONL input: either parsed data or the reason it is malformed."""

    line: int
    data: dict[str, Any] | None
    error: str | None = None


def normalise_text(text: str) -> str:
    """Lowercase and collapse whitespace: the form that exact-duplicate hashes are taken of."""
    return _WS.sub(" ", text).strip().lower()


def text_hash(text: str) -> str:
    """Return the sha256 hex digest of :func:`normalise_text` of ``text``."""
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()


def detect_format(path: Path) -> str:
    """Guess the input format from a path (directory or suffix)."""
    if path.is_dir():
        return "dir"
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in TEXT_SUFFIXES:
        return "txt"
    raise SourceError(
        f"cannot tell the format of {path} from its suffix; pass a format "
        "(jsonl, csv, parquet, txt, lines)"
    )


def iter_jsonl_lines(lines: Iterator[str], start: int = 1) -> Iterator[RawRow]:
    for number, line in enumerate(lines, start=start):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            yield RawRow(number, None, f"bad JSON: {exc.msg}")
            continue
        if not isinstance(data, dict):
            yield RawRow(number, None, "not a JSON object")
            continue
        yield RawRow(number, data)


def _iter_csv(path: Path) -> Iterator[RawRow]:
    # Texts in a CSV cell can be long; the stdlib default limit (128 KiB) is too small.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        try:
            for number, row in enumerate(reader, start=1):
                if None in row:
                    yield RawRow(number, None, "more cells than header columns")
                    continue
                yield RawRow(number, {k: v for k, v in row.items() if v is not None})
        except csv.Error as exc:
            yield RawRow(reader.line_num, None, f"bad CSV: {exc}")


def _iter_parquet(path: Path, columns: list[str] | None) -> Iterator[RawRow]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise SourceError(f"cannot read Parquet file {path}: {exc}") from exc
    number = 0
    for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS, columns=columns):
        for data in batch.to_pylist():
            number += 1
            yield RawRow(number, data)


def columns_of(path: Path, fmt: str) -> list[str]:
    """Return the column/field names of a tabular input (first object for JSONL).

    Args:
        path: The input file.
        fmt: ``jsonl``, ``csv`` or ``parquet``.

    Returns:
        The names found (empty if the file has no readable row).
    """
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.ParquetFile(path).schema_arrow.names)
        except Exception as exc:
            raise SourceError(f"cannot read Parquet file {path}: {exc}") from exc
    if fmt == "csv":
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            return list(next(csv.reader(handle, delimiter=delimiter), []))
    for row in iter_rows(path, fmt):
        if row.data is not None:
            return list(row.data)
    return []


def iter_rows(path: Path, fmt: str, columns: list[str] | None = None) -> Iterator[RawRow]:
    """Stream the rows of a JSONL, CSV or Parquet file.

    Args:
        path: The input file.
        fmt: ``jsonl``, ``csv`` or ``parquet``.
        columns: For Parquet, read only these columns.

    Yields:
        One :class:`RawRow` per non-blank line/row; malformed ones carry an error.

    Raises:
        SourceError: If the file is missing or unreadable.
    """
    if not path.exists():
        raise SourceError(f"file not found: {path}")
    if fmt == "jsonl":
        with path.open(encoding="utf-8", errors="replace") as handle:
            yield from iter_jsonl_lines(iter(handle))
    elif fmt == "csv":
        yield from _iter_csv(path)
    elif fmt == "parquet":
        yield from _iter_parquet(path, columns)
    else:
        raise SourceError(f"unsupported format for rows: {fmt}")


def pick_text_field(fields: list[str], text_field: str | None, where: str) -> str:
    """Choose the text field: the one asked for, else the first known candidate present.

    Raises:
        SourceError: Naming the field asked for (or the candidates) and the fields found.
    """
    found = ", ".join(fields) if fields else "(none)"
    if text_field is not None:
        if text_field not in fields:
            raise SourceError(f"text field {text_field!r} not in {where}; fields found: {found}")
        return text_field
    for candidate in TEXT_FIELD_CANDIDATES:
        if candidate in fields:
            return candidate
    raise SourceError(
        f"no text field in {where} (looked for {', '.join(TEXT_FIELD_CANDIDATES)}); "
        f"fields found: {found}; choose one with a text field option"
    )
