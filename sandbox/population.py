"""Who takes part: personas loaded from the packaged sample, a file or a persona store.

Files are imported into a throwaway persona store so that every source is read, filtered and
sampled by the same personahub code. Stored relationship edges come along for the graph.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from personahub.db.engine import DatabaseError
from personahub.rows import SourceError, columns_of, detect_format
from personahub.store.connection import StoreError
from personahub.store.filters import PersonaFilter
from personahub.store.io import AUTO_TEXT_FIELDS, import_file
from personahub.store.models import stored_id
from personahub.store.opening import STORE_SUFFIXES, open_personas
from personahub.store.store import PersonaStore
from sandbox.raking import JOINT, attribute_value
from sandbox.scenario import Population, Problem


class PopulationError(ValueError):
    """The population cannot be loaded; one line."""


@dataclass(frozen=True, slots=True)
class PersonaRecord:
    """A persona as the simulation sees it."""

    persona_id: str
    text: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Cast:
    """The selected personas and the stored edges among them (indices into ``personas``),
    and a note for the user when fewer were selected than asked for."""

    personas: list[PersonaRecord]
    edges: list[tuple[int, int, str, float]]
    note: str = ""


def packaged_sample() -> tuple[Path, Path]:
    """Paths of the packaged sample population and its edges."""
    folder = Path(__file__).resolve().parent / "data"
    return folder / "sample_population.jsonl", folder / "sample_edges.jsonl"


def source_problems(spec: Population, base_dir: Path) -> list[Problem]:
    """What is wrong with the files ``spec`` names, found without importing them: a missing
    file, a directory, a format without a persona text column, an empty file. Stores and
    database URLs are checked when the run opens them.

    Args:
        spec: The scenario's population section.
        base_dir: Folder that relative paths are resolved against (the scenario's).
    """
    out: list[Problem] = []
    if spec.edges is not None and not (base_dir / spec.edges).is_file():
        out.append((("population", "edges"), _missing(base_dir / spec.edges), spec.edges))
    if spec.source == "sample" or "://" in spec.source:
        return out
    path = (base_dir / spec.source).resolve()
    where = ("population", "source")
    if not path.is_file():
        return [(where, _missing(path), None), *out]
    if path.suffix in STORE_SUFFIXES:
        return out
    try:
        columns = columns_of(path, detect_format(path))
    except (SourceError, OSError, UnicodeDecodeError) as exc:
        return [(where, str(exc), None), *out]
    if not columns:
        return [(where, f"no personas in {path} (no header or no JSON object)", None), *out]
    wanted = [spec.text_field] if spec.text_field else list(AUTO_TEXT_FIELDS)
    if not any(c in columns for c in wanted):
        hint = "" if spec.text_field else "; name it with population.text_field"
        message = f"no persona text column ({', '.join(wanted)}) in {path}"
        return [(where, f"{message}; columns: {', '.join(columns)}{hint}", None), *out]
    return out


def _missing(path: Path) -> str:
    if path.is_dir():
        return f"{path} is a directory, not a persona file (JSONL, CSV, Parquet or .db)"
    return f"file not found: {path}"


def _open_source(spec: Population, base_dir: Path, scratch: Path) -> PersonaStore:
    if spec.source == "sample":
        people, sample_edges = packaged_sample()
        store = PersonaStore(scratch / "population.db")
        import_file(store, people, edges_path=sample_edges)
        return store
    edges = (base_dir / spec.edges).resolve() if spec.edges else None
    if edges is not None and not edges.exists():
        raise PopulationError(f"population.edges: file not found: {edges}")
    source = spec.source if "://" in spec.source else str((base_dir / spec.source).resolve())
    try:
        return open_personas(source, scratch, text_field=spec.text_field, edges=edges)
    except StoreError as exc:
        raise PopulationError(f"population.source: {exc}") from None


def load_cast(spec: Population, seed: int, base_dir: Path, size: int | None = None) -> Cast:
    """Select the personas of a run.

    Args:
        spec: The scenario's population section.
        seed: Seed of the random sample.
        base_dir: Folder that relative paths are resolved against (the scenario's).
        size: Overrides ``spec.sample`` (the ``--agents`` flag).

    Raises:
        PopulationError: Missing file, unreachable store, or nobody selected.
    """
    wanted = size or spec.sample
    selector = spec.filter
    flt = PersonaFilter(
        contains_any=selector.contains_any if selector else [],
        regex=selector.regex if selector else None,
        attributes=dict(selector.attributes) if selector else {},
        sample=wanted,
        seed=seed,
    )
    with tempfile.TemporaryDirectory(prefix="sandbox-population-") as scratch:
        try:
            store = _open_source(spec, base_dir, Path(scratch))
        except (StoreError, DatabaseError) as exc:
            raise PopulationError(f"population.source: {exc}") from None
        try:
            rows = store.personas(flt)
            if not rows:
                raise PopulationError("population: the filter selected no personas")
            rows.sort(key=lambda p: stored_id(p.id))
            index = {stored_id(row.id): i for i, row in enumerate(rows)}
            personas = [
                PersonaRecord(row.external_id or str(row.id), row.text, dict(row.attributes or {}))
                for row in rows
            ]
            edges = [
                (index[e.src_id], index[e.dst_id], e.relation, float(e.strength))
                for e in store.edges(set(index))
                if e.src_id in index and e.dst_id in index and e.src_id != e.dst_id
            ]
        finally:
            store.close()
    note = ""
    if wanted is not None and len(personas) < wanted:
        asked = "--agents" if size else "population.sample"
        pool = "match the filter" if selector else "are in the population"
        note = (
            f"{asked} asks for {wanted:,} agents, but only {len(personas):,} personas {pool}: "
            f"running with {len(personas):,}"
        )
    return Cast(personas, edges, note)


SHOWN_VALUES = 12
"""Existing values a ``population.match`` error lists, at most."""


def match_problems(spec: Population, base_dir: Path) -> list[Problem]:
    """What is wrong with ``population.match`` given the personas the population can draw
    from (after the filter, before sampling): an attribute no persona has, a target value no
    persona has (naming the values that exist), personas without the attribute.

    Args:
        spec: The scenario's population section (``match`` set; its source already checked).
        base_dir: Folder that relative paths are resolved against (the scenario's).

    Raises:
        PopulationError: The population cannot be loaded.
    """
    if not spec.match:
        return []
    pool = load_cast(spec.model_copy(update={"sample": None}), 0, base_dir).personas
    out: list[Problem] = []
    for key, shares in spec.match.items():
        where = ("population", "match", key)
        values = [attribute_value(p.attributes, key) for p in pool]
        have = sorted({v for v in values if v is not None})
        lacking = [
            name.strip()
            for name in key.split(JOINT)
            if all(p.attributes.get(name.strip()) is None for p in pool)
        ]
        if lacking:
            out.append(
                (where, f"no persona has the attribute {', '.join(map(repr, lacking))}", None)
            )
            continue
        missing = values.count(None)
        if missing:
            message = f"{missing:,} of {len(pool):,} personas have no {key!r}; add a filter"
            out.append((where, f"{message} that keeps only personas with it", None))
        shown = ", ".join(map(repr, have[:SHOWN_VALUES])) + (
            ", ..." if len(have) > SHOWN_VALUES else ""
        )
        for value in shares:
            if value not in have:
                out.append(((*where, value), f"no persona has this value (values: {shown})", value))
    return out
