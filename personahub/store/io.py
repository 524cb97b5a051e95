"""Import personas into a store from files, and export them again.

Import formats:

* Persona Hub release JSONL: ``{"persona": ...}`` lines (persona.jsonl) and
  ``{"input persona": ..., "synthesized text": ..., "description": ...}`` lines (the
  synthesis files). The persona is the text; the other columns of the row are kept as
  attributes under their column names (the synthesized text as released, a JSON string for
  the tool file). A persona repeated across lines is stored once, with the attributes of
  its first row, and the repeats are counted as duplicates.
* Plain JSONL, CSV or Parquet with a text field (``persona``, ``input persona`` or
  ``text``, or the one named). Other scalar/list fields become attributes, an ``id`` (or
  ``external_id``) field becomes the external id, an ``attributes`` object (or JSON string)
  is merged into the attributes, and ``origin``/``hop``/``angle``/``granularity``/``model``
  are kept when they hold valid values, so a store's own export imports back faithfully.

Malformed rows (bad JSON, missing or empty text) are counted and skipped, never fatal.

Export writes one row per persona (JSONL, or Parquet with ``attributes`` as a JSON string)
and optionally the edges between exported personas as JSONL referencing external ids.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from personahub.rows import SourceError, columns_of, detect_format, iter_rows
from personahub.store.connection import StoreError
from personahub.store.filters import PersonaFilter
from personahub.store.models import ORIGINS, EdgeIn, Persona, PersonaIn, stored_id
from personahub.store.store import PersonaStore

AUTO_TEXT_FIELDS: tuple[str, ...] = ("persona", "input persona", "text")
# Export columns that are store-internal and must not become attributes on re-import.
_IGNORED_FIELDS = frozenset({"parent_id", "source_text_id", "created", "norm_hash"})
MAX_EXAMPLES = 20
Progress = Callable[[int], None]


class ImportReport(BaseModel):
    """What an import did. ``malformed_examples`` holds up to 20 (line, reason) pairs."""

    path: str
    format: str
    read: int = 0
    added: int = 0
    duplicates: int = 0
    malformed: int = 0
    malformed_examples: list[tuple[int, str]] = []
    edges_read: int = 0
    edges_added: int = 0
    edges_malformed: int = 0
    edges_malformed_examples: list[tuple[int, str]] = []

    def note_malformed(self, line: int, reason: str, edges: bool = False) -> None:
        """Count one malformed row and keep it as an example while there is room."""
        if edges:
            self.edges_malformed += 1
            examples = self.edges_malformed_examples
        else:
            self.malformed += 1
            examples = self.malformed_examples
        if len(examples) < MAX_EXAMPLES:
            examples.append((line, reason))


def _resolve_format(path: Path, fmt: str) -> str:
    try:
        kind = detect_format(path) if fmt == "auto" else fmt
    except SourceError as exc:
        raise StoreError(str(exc)) from None
    if kind not in ("jsonl", "csv", "parquet"):
        raise StoreError(f"cannot import {path}: format {kind!r} (use jsonl, csv or parquet)")
    return kind


def _scalar_or_list(value: Any) -> bool:
    if isinstance(value, str | int | float | bool):
        return True
    return isinstance(value, list) and all(isinstance(v, str | int | float | bool) for v in value)


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != []


def _row_to_persona(data: dict[str, Any], field: str) -> PersonaIn | str:
    """Build a PersonaIn from a row, or return the reason the row is malformed."""
    if field not in data:
        return f"missing field {field!r}"
    text = data[field]
    if not isinstance(text, str):
        return f"field {field!r} is not text"
    if not text.strip():
        return f"empty {field!r}"
    out: dict[str, Any] = {"text": text, "attributes": {}}
    attributes: dict[str, Any] = out["attributes"]
    for key, value in data.items():
        if key == field or key in _IGNORED_FIELDS or not _present(value):
            continue
        if key in ("id", "external_id"):
            if key == "external_id" or "external_id" not in out:
                out["external_id"] = str(value)
        elif key == "attributes":
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except json.JSONDecodeError:
                    return "attributes is not a JSON object"
            if not isinstance(value, dict):
                return "attributes is not an object"
            attributes.update({k: v for k, v in value.items() if _present(v)})
        elif key == "origin" and value in ORIGINS:
            out["origin"] = value
        elif key == "hop" and str(value).isdigit():
            out["hop"] = int(value)
        elif key == "angle" and value in ("read", "write", "like", "dislike"):
            out["angle"] = value
        elif key == "granularity" and value in ("coarse", "fine"):
            out["granularity"] = value
        elif key == "model" and isinstance(value, str):
            out["model"] = value
        elif _scalar_or_list(value):
            attributes[key] = value
    try:
        return PersonaIn(**out)
    except ValidationError as exc:
        return f"invalid: {exc.errors()[0]['msg']}"


def _choose_field(path: Path, kind: str, text_field: str | None) -> str | None:
    """The text field to use, or None to pick per row among the auto candidates."""
    try:
        columns = columns_of(path, kind)
    except SourceError as exc:
        raise StoreError(str(exc)) from None
    found = ", ".join(columns) if columns else "(none)"
    if text_field is not None:
        if columns and text_field not in columns:
            raise StoreError(f"text field {text_field!r} not found in {path}; columns: {found}")
        return text_field
    if not columns:
        return None  # nothing readable: every row will be reported as malformed
    if not any(c in columns for c in AUTO_TEXT_FIELDS):
        raise StoreError(
            f"no persona text field in {path} (looked for {', '.join(AUTO_TEXT_FIELDS)}); "
            f"columns: {found}; name one with text_field"
        )
    # JSONL rows may differ (persona.jsonl vs synthesis files), so decide per row.
    return None if kind == "jsonl" else next(c for c in AUTO_TEXT_FIELDS if c in columns)


def _rows(path: Path, kind: str) -> Iterator[Any]:
    try:
        yield from iter_rows(path, kind)
    except SourceError as exc:
        raise StoreError(str(exc)) from None


def import_file(
    store: PersonaStore,
    path: str | Path,
    fmt: str = "auto",
    text_field: str | None = None,
    edges_path: str | Path | None = None,
    batch_size: int = 5000,
    progress: Progress | None = None,
) -> ImportReport:
    """Import personas (and optionally edges) from a file into a store.

    Args:
        store: The target store.
        path: JSONL, CSV or Parquet file.
        fmt: ``auto`` (from the suffix), ``jsonl``, ``csv`` or ``parquet``.
        text_field: The field holding the persona text; auto-detected when None.
        edges_path: A JSONL file of ``{"src", "dst", "relation", "strength"}`` referencing
            external ids of imported (or already stored) personas.
        batch_size: Personas per store transaction.
        progress: Called with the number of rows read since the last call.

    Returns:
        The counts.

    Raises:
        StoreError: Missing file, unknown format, or a text field that is not there.
    """
    path = Path(path)
    if not path.exists():
        raise StoreError(f"file not found: {path}")
    if edges_path is not None and not Path(edges_path).exists():
        raise StoreError(f"edges file not found: {edges_path}")
    kind = _resolve_format(path, fmt)
    field = _choose_field(path, kind, text_field)
    report = ImportReport(path=str(path), format=kind)
    external: dict[str, int] = {}
    batch: list[PersonaIn] = []

    def flush() -> None:
        added = store.add_personas(batch, batch_size=batch_size)
        report.added += added.added
        report.duplicates += added.duplicates
        for persona, persona_id in zip(batch, added.ids, strict=True):
            if persona.external_id is not None:
                external.setdefault(persona.external_id, persona_id)
        if progress is not None:
            progress(len(batch))
        batch.clear()

    for row in _rows(path, kind):
        report.read += 1
        if row.data is None:
            report.note_malformed(row.line, row.error or "malformed")
            continue
        row_field = field or next((c for c in AUTO_TEXT_FIELDS if c in row.data), None)
        result = _row_to_persona(row.data, row_field) if row_field else "no persona text field"
        if isinstance(result, str):
            report.note_malformed(row.line, result)
            continue
        batch.append(result)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    if edges_path is not None:
        _import_edges(store, Path(edges_path), external, report)
    return report


def _import_edges(
    store: PersonaStore, path: Path, external: dict[str, int], report: ImportReport
) -> None:
    pending: list[tuple[int, dict[str, Any]]] = []
    for row in _rows(path, "jsonl"):
        report.edges_read += 1
        if row.data is None:
            report.note_malformed(row.line, row.error or "malformed", edges=True)
            continue
        missing = [k for k in ("src", "dst") if not _present(row.data.get(k))]
        if missing:
            report.note_malformed(row.line, f"missing field {missing[0]!r}", edges=True)
            continue
        pending.append((row.line, row.data))
    wanted = {str(d[k]) for _, d in pending for k in ("src", "dst")} - set(external)
    known = {**store.ids_for_external(wanted), **external}
    edges: list[EdgeIn] = []
    for line, data in pending:
        src, dst = known.get(str(data["src"])), known.get(str(data["dst"]))
        if src is None or dst is None:
            ref = data["src"] if src is None else data["dst"]
            report.note_malformed(line, f"unknown persona {ref!r}", edges=True)
            continue
        try:
            edges.append(
                EdgeIn(
                    src_id=src,
                    dst_id=dst,
                    relation=str(data.get("relation") or "related"),
                    strength=float(data.get("strength", 1.0)),
                )
            )
        except (ValidationError, TypeError, ValueError) as exc:
            report.note_malformed(line, f"invalid edge: {str(exc).splitlines()[0]}", edges=True)
    report.edges_added = store.add_edges(edges)
    # Shape problems were noted on the first pass, references on the second: show in line order.
    report.edges_malformed_examples.sort()


def export_row(persona: Persona) -> dict[str, Any]:
    """The exported form of a persona (``persona`` holds the text, as in the release)."""
    return {
        "id": persona.id,
        "persona": persona.text,
        "origin": persona.origin,
        "hop": persona.hop,
        "angle": persona.angle,
        "granularity": persona.granularity,
        "model": persona.model,
        "external_id": persona.external_id,
        "parent_id": persona.parent_id,
        "source_text_id": persona.source_text_id,
        "attributes": persona.attributes or {},
    }


def _parquet_writer(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("persona", pa.string()),
            ("origin", pa.string()),
            ("hop", pa.int64()),
            ("angle", pa.string()),
            ("granularity", pa.string()),
            ("model", pa.string()),
            ("external_id", pa.string()),
            ("parent_id", pa.int64()),
            ("source_text_id", pa.int64()),
            ("attributes", pa.string()),
        ]
    )
    return pa, pq.ParquetWriter(path, schema), schema


def export_file(
    store: PersonaStore,
    path: str | Path,
    fmt: Literal["auto", "jsonl", "parquet"] = "auto",
    filter: PersonaFilter | None = None,
    edges_path: str | Path | None = None,
    progress: Progress | None = None,
    embedder_factory: Callable[[], Any] | None = None,
) -> int:
    """Export personas (one row each) to JSONL or Parquet.

    Args:
        store: The source store.
        path: Output file; ``.parquet`` selects Parquet under ``auto``, else JSONL.
        fmt: ``auto``, ``jsonl`` or ``parquet``.
        filter: Export only matching personas.
        edges_path: Also write the edges among exported personas here (JSONL, ``src``/``dst``
            are the personas' external ids, or their ids when they have none).
        progress: Called with the number of rows written since the last call.
        embedder_factory: Embedder provider for a ``similar_to`` filter.

    Returns:
        The number of personas written.
    """
    path = Path(path)
    kind = fmt if fmt != "auto" else ("parquet" if path.suffix.lower() == ".parquet" else "jsonl")
    if kind not in ("jsonl", "parquet"):
        raise StoreError(f"cannot export to format {kind!r} (use jsonl or parquet)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror}") from None
    keys: dict[int, str] = {}
    written = 0
    rows: list[dict[str, Any]] = []
    personas = store.iter_personas(filter, embedder_factory=embedder_factory)
    if kind == "jsonl":
        with path.open("w", encoding="utf-8") as handle:
            for persona in personas:
                handle.write(json.dumps(export_row(persona), ensure_ascii=False) + "\n")
                keys[stored_id(persona.id)] = persona.external_id or str(persona.id)
                written += 1
                if progress is not None and written % 1000 == 0:
                    progress(1000)
    else:
        pa, writer, schema = _parquet_writer(path)
        with writer:
            for persona in personas:
                row = export_row(persona)
                row["attributes"] = json.dumps(row["attributes"], ensure_ascii=False)
                rows.append(row)
                keys[stored_id(persona.id)] = persona.external_id or str(persona.id)
                written += 1
                if len(rows) >= 5000:
                    writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                    if progress is not None:
                        progress(len(rows))
                    rows.clear()
            if rows or written == 0:
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
    if progress is not None:
        progress(written % (1000 if kind == "jsonl" else 5000))
    if edges_path is not None:
        with Path(edges_path).open("w", encoding="utf-8") as handle:
            for edge in store.edges(set(keys)):
                record = {
                    "src": keys[edge.src_id],
                    "dst": keys[edge.dst_id],
                    "relation": edge.relation,
                    "strength": edge.strength,
                }
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return written
