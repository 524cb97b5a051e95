"""Streaming readers for input texts (the corpus that Text-to-Persona reads).

Inputs: JSONL, CSV, Parquet (streamed one row group / record batch at a time), a directory
of ``.txt``/``.md`` files (sorted, recursive, one text per file), a single ``.txt``/``.md``
file (one text), or ``-`` for stdin (one text per line, or JSONL when the lines are JSON
objects). Nothing here holds the whole corpus in memory.

Each text comes out as a :class:`SourceRecord` with a stable id ``"{file name}:{line or row}"``
(1-based) so that a later pipeline run can resume and skip what it already processed, and
a content hash so that the same text seen twice can be recognised.

Rows of JSONL/CSV/Parquet files are read by :mod:`personahub.rows`, which the persona store's
importer shares.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal, TextIO

from pydantic import BaseModel, ConfigDict

from personahub.rows import (
    TEXT_SUFFIXES,
    RawRow,
    SourceError,
    columns_of,
    detect_format,
    iter_jsonl_lines,
    iter_rows,
    pick_text_field,
    text_hash,
)

log = logging.getLogger(__name__)

Format = Literal["auto", "jsonl", "csv", "parquet", "txt", "lines"]
DEFAULT_MAX_CHARS = 20_000


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
        rows = iter_jsonl_lines(lines(), start=first_number)
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
