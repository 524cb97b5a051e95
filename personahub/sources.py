"""Streaming readers for input texts (the corpus that Text-to-Persona reads).

Inputs: JSONL, CSV, Parquet (streamed one row group / record batch at a time), a directory
of ``.txt``/``.md`` files (sorted, recursive, one text per file), a single ``.txt``/``.md``
file (one text), or ``-`` for stdin (one text per line, or JSONL when the lines are JSON
objects). Nothing here holds the whole corpus in memory.

Each text comes out as a :class:`SourceRecord` with a stable id ``"{file name}:{line or row}"``
(1-based) so that a later pipeline run can resume and skip what it already processed, and
a content hash so that the same text seen twice can be recognised.

The lower-level :func:`iter_rows` is shared with the persona importer.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

from pydantic import BaseModel, ConfigDict

log = logging.getLogger(__name__)

Format = Literal["auto", "jsonl", "csv", "parquet", "txt", "lines"]
TEXT_FIELD_CANDIDATES: tuple[str, ...] = ("text", "content", "body", "persona", "input persona")
TEXT_SUFFIXES = (".txt", ".md")
DEFAULT_MAX_CHARS = 20_000
_PARQUET_BATCH_ROWS = 4096
_WS = re.compile(r"\s+")


class SourceError(ValueError):
    """A problem with an input source, worded as one line for the user."""


class SourceRecord(BaseModel):
    """One input text.

    Attributes:
        id: Stable id ``"{file name}:{line or row}"`` (1-based).
        text: The text, possibly cut to the token/char budget.
        content_hash: sha256 of the normalised (lowercase, whitespace-collapsed) text.
        origin: Where it came from: ``"{path}:{line or row}"``.
        truncated: Whether the text was cut to the budget.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    text: str
    content_hash: str
    origin: str
    truncated: bool = False


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


def truncate_text(
    text: str, max_chars: int | None = None, max_tokens: int | None = None
) -> tuple[str, bool]:
    """Cut a text to a budget on a word boundary.

    Tokens are approximated by whitespace-separated words, which is close enough to decide
    what fits into a prompt and needs no tokenizer.

    Args:
        text: The text.
        max_chars: Character budget, or None.
        max_tokens: Word budget, or None.

    Returns:
        The (possibly) shortened text and whether it was cut.
    """
    cut = False
    if max_tokens is not None:
        # Find the end of the max_tokens-th word without splitting the whole text.
        for count, match in enumerate(re.finditer(r"\S+", text), start=1):
            if count >= max_tokens:
                end = match.end()
                if text[end:].strip():
                    text, cut = text[:end], True
                break
    if max_chars is not None and len(text) > max_chars:
        head = text[: max_chars + 1]
        # Cut at the last whitespace inside the budget; one giant word is cut hard.
        space = max(head.rfind(" "), head.rfind("\n"), head.rfind("\t"))
        text = head[:space] if space > 0 else text[:max_chars]
        cut = True
    return text.rstrip(), cut


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


def _iter_jsonl_lines(lines: Iterator[str], start: int = 1) -> Iterator[RawRow]:
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
            yield from _iter_jsonl_lines(iter(handle))
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


class _Budget:
    def __init__(self, max_chars: int | None, max_tokens: int | None) -> None:
        self.max_chars = max_chars
        self.max_tokens = max_tokens

    def record(self, name: str, origin: str, number: int, text: str) -> SourceRecord:
        cut_text, cut = truncate_text(text, self.max_chars, self.max_tokens)
        return SourceRecord(
            id=f"{name}:{number}",
            text=cut_text,
            content_hash=text_hash(cut_text),
            origin=f"{origin}:{number}",
            truncated=cut,
        )


def _report(on_error: Callable[[int, str], None] | None, line: int, reason: str) -> None:
    if on_error is not None:
        on_error(line, reason)
    else:
        log.warning("skipped line %d: %s", line, reason)


def _texts_from_rows(
    rows: Iterator[RawRow],
    field: str,
    name: str,
    origin: str,
    budget: _Budget,
    on_error: Callable[[int, str], None] | None,
) -> Iterator[SourceRecord]:
    for row in rows:
        if row.data is None:
            _report(on_error, row.line, row.error or "malformed")
            continue
        value = row.data.get(field)
        text = value if isinstance(value, str) else ("" if value is None else str(value))
        if not text.strip():
            _report(on_error, row.line, f"empty or missing {field!r}")
            continue
        yield budget.record(name, origin, row.line, text)


def _read_stdin(
    stream: TextIO, text_field: str | None, budget: _Budget, on_error
) -> Iterator[SourceRecord]:
    first_number, first = 0, None
    for number, line in enumerate(stream, start=1):
        if line.strip():
            first_number, first = number, line
            break
    if first is None:
        return
    try:
        is_jsonl = isinstance(json.loads(first), dict)
    except json.JSONDecodeError:
        is_jsonl = False

    def lines() -> Iterator[str]:
        yield first
        yield from stream

    if is_jsonl:
        field = pick_text_field(list(json.loads(first)), text_field, "stdin")
        rows = _iter_jsonl_lines(lines(), start=first_number)
        yield from _texts_from_rows(rows, field, "stdin", "-", budget, on_error)
        return
    for number, line in enumerate(lines(), start=first_number):
        if line.strip():
            yield budget.record("stdin", "-", number, line.strip())


def _read_text_file(path: Path, name: str, budget: _Budget) -> SourceRecord | None:
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        return None
    return budget.record(name, str(path), 1, text.strip())


def read_texts(
    path_or_dash: str | Path,
    text_field: str | None = None,
    fmt: Format = "auto",
    max_chars: int | None = DEFAULT_MAX_CHARS,
    max_tokens: int | None = None,
    on_error: Callable[[int, str], None] | None = None,
) -> Iterator[SourceRecord]:
    """Stream the texts of an input source.

    Args:
        path_or_dash: A file, a directory of ``.txt``/``.md`` files, or ``"-"`` for stdin.
        text_field: The field holding the text (JSONL/CSV/Parquet); auto-detected among
            ``text, content, body, persona, input persona`` when None.
        fmt: ``auto`` (from the suffix), ``jsonl``, ``csv``, ``parquet``, ``txt`` (whole
            file is one text) or ``lines`` (one text per line).
        max_chars: Cut texts longer than this many characters (on a word boundary).
        max_tokens: Cut texts longer than this many whitespace-separated words.
        on_error: Called with (line, reason) for each skipped row; logged when None.

    Returns:
        An iterator of :class:`SourceRecord`, one per non-empty text, in file order.

    Raises:
        SourceError: Missing file, unknown format, or a text field that is not there
            (checked before the iterator is returned; for stdin, on first iteration).
    """
    # Checks run now, not on first iteration, so that callers fail before any work starts.
    if (max_chars is not None and max_chars < 1) or (max_tokens is not None and max_tokens < 1):
        raise SourceError("max_chars and max_tokens must be at least 1")
    budget = _Budget(max_chars, max_tokens)
    if str(path_or_dash) == "-":
        return _read_stdin(sys.stdin, text_field, budget, on_error)
    path = Path(path_or_dash)
    if not path.exists():
        raise SourceError(f"file not found: {path}")
    kind = "dir" if path.is_dir() else (detect_format(path) if fmt == "auto" else fmt)
    if kind == "dir":
        return _read_dir(path, budget)
    if kind == "txt":
        return _read_single(path, budget)
    if kind == "lines":
        return _read_lines(path, budget)
    if kind not in ("jsonl", "csv", "parquet"):
        raise SourceError(f"unknown format {kind!r} (use jsonl, csv, parquet, txt or lines)")
    field = pick_text_field(columns_of(path, kind), text_field, str(path))
    rows = iter_rows(path, kind, columns=[field] if kind == "parquet" else None)
    return _texts_from_rows(rows, field, path.name, str(path), budget, on_error)


def _read_dir(path: Path, budget: _Budget) -> Iterator[SourceRecord]:
    # Sorted so that ids and order are the same on every run and machine.
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
    for file in files:
        record = _read_text_file(file, file.relative_to(path).as_posix(), budget)
        if record is not None:
            yield record


def _read_single(path: Path, budget: _Budget) -> Iterator[SourceRecord]:
    record = _read_text_file(path, path.name, budget)
    if record is not None:
        yield record


def _read_lines(path: Path, budget: _Budget) -> Iterator[SourceRecord]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield budget.record(path.name, str(path), number, line.strip())
