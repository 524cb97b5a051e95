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
from personahub.store.filters import PersonaFilter
from personahub.store.io import import_file
from personahub.store.models import stored_id
from personahub.store.opening import open_personas
from personahub.store.store import PersonaStore, StoreError
from sandbox.scenario import Population


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
    """The selected personas and the stored edges among them (indices into ``personas``)."""

    personas: list[PersonaRecord]
    edges: list[tuple[int, int, str, float]]


def packaged_sample() -> tuple[Path, Path]:
    """Paths of the packaged sample population and its edges."""
    folder = Path(__file__).resolve().parent / "data"
    return folder / "sample_population.jsonl", folder / "sample_edges.jsonl"


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
    return Cast(personas, edges)
