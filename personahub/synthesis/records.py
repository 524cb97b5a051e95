"""Output rows, the resume journal, and the JSONL/Parquet writers.

Every settled item (kept with its row, or dropped with its reason) is appended to a journal
next to the output, ``<out>.journal.jsonl``, as soon as it is decided. A rerun reads the
journal and skips those items, so a killed run continues where it stopped and nothing is
generated twice; items whose request failed are not settled and are retried. Each failed
attempt is journaled too (``"status": "failed"``), and an item is given up after
``max_attempts`` of them, so one that always fails does not keep a rerun busy forever; a
larger ``--max-attempts`` on a later run retries it again. Dropped and given-up items are
appended with their content to ``<out>.rejects.jsonl`` for inspection. The journal's
first line records the options that shape the output (task, mode, template version, persona
source); a rerun with different ones is refused rather than mixed into the same file.

The output file itself is (re)written from the journal at the end of every run, atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, Field

# Free-form nested values are JSON strings in Parquet: their keys differ between rows (tool
# parameters, per-task outputs), which Arrow would widen into sparse struct columns.
PARQUET_JSON_COLUMNS = ("output", "verification", "params", "usage")
HEADER_KEYS = ("task", "mode", "template_version", "personas", "filter", "seed")


class _Keyed(Protocol):
    @property
    def key(self) -> str: ...


T = TypeVar("T", bound=_Keyed)


class SynthesisError(ValueError):
    """A synthesis run that cannot start; one line for the user."""


class SynthesisRow(BaseModel):
    """One kept output with its provenance (the schema of every output line)."""

    id: str = Field(description="Stable item id: task, mode, persona and sample.")
    task: str
    mode: Literal["zero-shot", "few-shot", "persona-few-shot"]
    persona_id: str
    persona: str
    sample: int = Field(ge=0, description="Sample index for a persona used more than once.")
    output: dict[str, Any]
    text: str = Field(description="The output as flat text (what dedup and diversity read).")
    verification: dict[str, Any]
    template_version: str
    model: str
    backend: str
    params: dict[str, Any]
    usage: dict[str, int]
    created: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))


def journal_path(out: Path) -> Path:
    return out.with_name(out.name + ".journal.jsonl")


def rejects_path(out: Path) -> Path:
    return out.with_name(out.name + ".rejects.jsonl")


def _append_lines(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Append JSON lines and fsync, so a kill loses at most the line being written."""
    lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in records]
    if lines:
        with path.open("a", encoding="utf-8") as fh:
            fh.writelines(lines)
            fh.flush()
            os.fsync(fh.fileno())


class Journal:
    """The append-only record of settled items of one output file.

    Args:
        path: The journal file.
        header: The options of this run; must equal the stored header on resume.
        rejects: Where dropped and given-up items go with their content (none when None).
        max_attempts: Failed attempts after which an unsettled item is given up.

    Raises:
        SynthesisError: The journal was written by a run with other options.
    """

    def __init__(
        self,
        path: Path,
        header: dict[str, Any],
        rejects: Path | None = None,
        max_attempts: int = 3,
    ) -> None:
        self.path = path
        self.rejects = rejects
        self.max_attempts = max_attempts
        self.entries: dict[str, dict[str, Any]] = {}
        self.attempts: dict[str, int] = {}
        header = {k: header[k] for k in HEADER_KEYS}
        if path.exists() and path.stat().st_size:
            self._load(header)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", encoding="utf-8") as fh:
                fh.write(json.dumps({"header": header}) + "\n")

    def _load(self, header: dict[str, Any]) -> None:
        data = self.path.read_bytes()
        # A kill can leave half a line: cut it, or the next append would be glued to it.
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) != len(data):
            with self.path.open("r+b") as fh:
                fh.truncate(len(complete))
        lines = complete.decode("utf-8").splitlines()
        stored = json.loads(lines[0]).get("header", {}) if lines else {}
        different = [k for k in HEADER_KEYS if stored.get(k) != header[k]]
        if different:
            shown = ", ".join(f"{k}={stored.get(k)!r} (now {header[k]!r})" for k in different)
            raise SynthesisError(
                f"{self.path} belongs to another run: {shown}; "
                "choose another --out, or delete the output and its journal to start over"
            )
        for line in lines[1:]:
            self._record(json.loads(line))

    def _record(self, entry: dict[str, Any]) -> None:
        if entry["status"] == "failed":
            self.attempts[entry["item"]] = entry["attempt"]
        else:
            self.entries[entry["item"]] = entry

    def __contains__(self, key: str) -> bool:
        """Whether the item is settled (kept or dropped)."""
        return key in self.entries

    def gave_up(self, key: str) -> bool:
        """Whether the item failed ``max_attempts`` times and is not retried."""
        return key not in self.entries and self.attempts.get(key, 0) >= self.max_attempts

    def pending(self, items: Sequence[T]) -> list[T]:
        """The items (anything with a ``key``) neither settled nor given up."""
        return [i for i in items if i.key not in self.entries and not self.gave_up(i.key)]

    def kept_rows(self) -> list[dict[str, Any]]:
        """Kept rows in the order they were settled."""
        return [e["row"] for e in self.entries.values() if e["status"] == "kept"]

    def append(
        self, entries: Iterable[dict[str, Any]], rejects: Iterable[dict[str, Any]] = ()
    ) -> None:
        """Record items: ``{"item", "status": "kept"|"dropped", "reason"?, "row"?}`` or a
        failed attempt ``{"item", "status": "failed", "error", "attempt"}``; ``rejects`` go
        to the rejects file (written first: a kill between the two then repeats a reject
        line rather than losing one)."""
        if self.rejects is not None:
            _append_lines(self.rejects, rejects)
        entries = list(entries)
        for entry in entries:
            self._record(entry)
        _append_lines(self.path, entries)


def output_format(out: Path) -> str:
    """``jsonl`` or ``parquet`` from the file suffix.

    Raises:
        SynthesisError: Any other suffix.
    """
    suffix = out.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return "jsonl"
    if suffix == ".parquet":
        return "parquet"
    raise SynthesisError(f"--out must end in .jsonl or .parquet, got {out.name!r}")


def write_output(rows: list[dict[str, Any]], out: Path) -> None:
    """Write rows to ``out`` (JSONL or Parquet by suffix), replacing it atomically."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    if output_format(out) == "jsonl":
        with tmp.open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        flat = [
            {
                k: json.dumps(v, ensure_ascii=False) if k in PARQUET_JSON_COLUMNS else v
                for k, v in r.items()
            }
            for r in rows
        ]
        schema = pa.schema(
            [
                (name, pa.int64() if name == "sample" else pa.string())
                for name in SynthesisRow.model_fields
            ]
        )
        pq.write_table(pa.Table.from_pylist(flat, schema=schema), tmp)
    os.replace(tmp, out)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a synthesis output (JSONL or Parquet), nested fields decoded.

    Raises:
        SynthesisError: Missing or unreadable file.
    """
    if not path.is_file():
        raise SynthesisError(f"file not found: {path}")
    try:
        if path.suffix.lower() == ".parquet":
            rows = pq.read_table(path).to_pylist()
            for row in rows:
                for key in PARQUET_JSON_COLUMNS:
                    if isinstance(row.get(key), str):
                        row[key] = json.loads(row[key])
            return rows
        out = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise SynthesisError(f"{path}:{number}: not JSON ({exc.msg})") from None
        return out
    except (OSError, pa.ArrowException, UnicodeDecodeError) as exc:
        raise SynthesisError(f"{path}: cannot read: {exc}") from None
