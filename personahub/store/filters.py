"""The persona carver: select a slice of personas by keyword, pattern, origin, hop,
attributes and embedding similarity, then optionally take a seeded random sample.

What SQL can answer (origin, hop range, ASCII keywords) is pushed into the query by the
store; the rest runs in Python over streamed batches, so memory stays bounded by the batch
size (plus ``top_k`` and ``sample`` items). The Python stage works on any objects with
``text``, ``origin``, ``hop`` and ``attributes`` attributes (store rows or :class:`PersonaIn`),
so a JSONL population can be carved the same way as a store.

Order of the stages: SQL conditions -> keyword/regex/attribute checks -> similarity
(threshold, then ``top_k`` best, most similar first) -> ``sample`` (applied last, result in
stream order).
"""

from __future__ import annotations

import heapq
import random
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import ColumnElement, func, or_

from personahub.store.models import ORIGINS, Persona

T = TypeVar("T")
EmbedderFactory = Callable[[], Any]


class PersonaFilter(BaseModel):
    """Which personas to select. Every criterion given must hold (AND); lists inside a
    criterion are alternatives (OR).

    Attributes:
        contains_any: Keep personas whose text contains any of these words (case-insensitive).
        regex: Keep personas whose text matches this Python regular expression (search).
        origin: Keep only these origins.
        min_hop: Minimum Persona-to-Persona hop.
        max_hop: Maximum Persona-to-Persona hop.
        similar_to: A text; keep personas whose embedding cosine to it is high enough.
        min_similarity: The cosine threshold for ``similar_to``.
        top_k: With ``similar_to``, keep only the k most similar (most similar first).
        sample: Take a seeded random sample of this size, applied last.
        seed: Seed of the sample.
        attributes: Attribute key -> value (equality) or list of values (membership);
            list-valued attributes match when any element matches; case-insensitive.
    """

    model_config = ConfigDict(extra="forbid")

    contains_any: list[str] = Field(default_factory=list)
    regex: str | None = None
    origin: list[str] = Field(default_factory=list)
    min_hop: int | None = Field(default=None, ge=0)
    max_hop: int | None = Field(default=None, ge=0)
    similar_to: str | None = None
    min_similarity: float = Field(default=0.5, ge=-1.0, le=1.0)
    top_k: int | None = Field(default=None, ge=1)
    sample: int | None = Field(default=None, ge=0)
    seed: int = 0
    attributes: dict[str, str | list[str]] = Field(default_factory=dict)

    @field_validator("contains_any", "origin", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        # A scenario YAML may say `origin: imported` rather than a one-item list.
        return [value] if isinstance(value, str) else value

    @field_validator("contains_any")
    @classmethod
    def _no_empty_keywords(cls, value: list[str]) -> list[str]:
        return [v for v in (k.strip() for k in value) if v]

    @field_validator("origin")
    @classmethod
    def _known_origins(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in ORIGINS]
        if unknown:
            raise ValueError(f"unknown origin {unknown[0]!r}; choose from {', '.join(ORIGINS)}")
        return value

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regex {value!r}: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PersonaFilter:
        if self.top_k is not None and self.similar_to is None:
            raise ValueError("top_k needs similar_to")
        if self.min_hop is not None and self.max_hop is not None and self.min_hop > self.max_hop:
            raise ValueError("min_hop is greater than max_hop")
        return self

    @property
    def is_empty(self) -> bool:
        """True when the filter selects everything."""
        return self == PersonaFilter()


def sql_conditions(flt: PersonaFilter | None) -> list[ColumnElement[bool]]:
    """Translate what SQL can answer into WHERE conditions on :class:`Persona`.

    Keywords are pushed down only when all are ASCII, because SQLite's ``lower()`` folds
    ASCII only; the Python stage re-checks them either way.
    """
    if flt is None:
        return []
    conditions: list[ColumnElement[bool]] = []
    if flt.origin:
        conditions.append(Persona.origin.in_(flt.origin))  # type: ignore[attr-defined]
    if flt.min_hop is not None:
        conditions.append(Persona.hop >= flt.min_hop)  # type: ignore[arg-type]
    if flt.max_hop is not None:
        conditions.append(Persona.hop <= flt.max_hop)  # type: ignore[arg-type]
    if flt.contains_any and all(k.isascii() for k in flt.contains_any):
        lowered = func.lower(Persona.text)
        conditions.append(
            or_(*(lowered.contains(k.lower(), autoescape=True) for k in flt.contains_any))
        )
    return conditions


def _attribute_values(value: Any) -> set[str]:
    items = value if isinstance(value, list | tuple | set) else [value]
    return {str(v).casefold() for v in items if v is not None}


class _Matcher:
    """The per-record checks of the Python stage."""

    def __init__(self, flt: PersonaFilter) -> None:
        self.keywords = [k.casefold() for k in flt.contains_any]
        self.pattern = re.compile(flt.regex) if flt.regex else None
        self.origins = set(flt.origin)
        self.min_hop, self.max_hop = flt.min_hop, flt.max_hop
        self.attributes = {k: _attribute_values(v) for k, v in flt.attributes.items()}

    def __call__(self, record: Any) -> bool:
        text: str = record.text
        if self.keywords:
            folded = text.casefold()
            if not any(k in folded for k in self.keywords):
                return False
        if self.pattern is not None and not self.pattern.search(text):
            return False
        if self.origins and str(getattr(record, "origin", "")) not in self.origins:
            return False
        hop = getattr(record, "hop", 0) or 0
        if self.min_hop is not None and hop < self.min_hop:
            return False
        if self.max_hop is not None and hop > self.max_hop:
            return False
        if self.attributes:
            attrs = getattr(record, "attributes", None) or {}
            for key, wanted in self.attributes.items():
                if key not in attrs or not (_attribute_values(attrs[key]) & wanted):
                    return False
        return True


def reservoir(items: Iterable[T], size: int, seed: int) -> list[T]:
    """Seeded uniform sample of ``size`` items (Algorithm R), returned in stream order."""
    rng = random.Random(seed)
    chosen: list[tuple[int, T]] = []
    for index, item in enumerate(items):
        if index < size:
            chosen.append((index, item))
        else:
            slot = rng.randint(0, index)
            if slot < size:
                chosen[slot] = (index, item)
    chosen.sort(key=lambda pair: pair[0])
    return [item for _, item in chosen]


def _similar(
    batches: Iterable[Sequence[T]], flt: PersonaFilter, embedder: Any
) -> Iterator[tuple[float, T]]:
    query = embedder.encode([flt.similar_to])[0]
    for batch in batches:
        if not batch:
            continue
        vectors = embedder.encode([r.text for r in batch])  # type: ignore[attr-defined]
        scores = vectors @ query
        for score, record in zip(scores.tolist(), batch, strict=True):
            if score >= flt.min_similarity:
                yield score, record


def carve_batches(
    batches: Iterable[Sequence[T]],
    flt: PersonaFilter | None,
    embedder_factory: EmbedderFactory | None = None,
) -> Iterator[T]:
    """Apply the Python stage of a filter to a stream of record batches.

    Args:
        batches: Records in batches (their order is the stream order).
        flt: The filter (None keeps everything).
        embedder_factory: Returns an embedder with ``encode(texts) -> np.ndarray``;
            :func:`personahub.embeddings.get_embedder` by default, called only when the
            filter has ``similar_to``.

    Yields:
        The selected records.
    """
    if flt is None:
        for batch in batches:
            yield from batch
        return
    matcher = _Matcher(flt)
    matched = ([r for r in batch if matcher(r)] for batch in batches)
    selected: Iterable[T]
    if flt.similar_to is not None:
        if embedder_factory is None:
            from personahub.embeddings import get_embedder

            embedder_factory = get_embedder
        scored = _similar(matched, flt, embedder_factory())
        if flt.top_k is not None:
            # The index breaks ties by stream order and keeps records out of comparisons.
            best = heapq.nlargest(
                flt.top_k,
                ((score, -i, record) for i, (score, record) in enumerate(scored)),
                key=lambda t: (t[0], t[1]),
            )
            selected = [record for _, _, record in best]
        else:
            selected = (record for _, record in scored)
    else:
        selected = (r for batch in matched for r in batch)
    if flt.sample is not None:
        yield from reservoir(selected, flt.sample, flt.seed)
    else:
        yield from selected


def carve(
    records: Iterable[T],
    flt: PersonaFilter | None,
    embedder_factory: EmbedderFactory | None = None,
    batch_size: int = 256,
) -> list[T]:
    """Filter an in-memory or streamed collection of persona-like records.

    Args:
        records: Objects with ``text`` (and optionally ``origin``, ``hop``, ``attributes``).
        flt: The filter.
        embedder_factory: See :func:`carve_batches`.
        batch_size: Records per embedding batch.

    Returns:
        The selected records.
    """

    def batched() -> Iterator[list[T]]:
        batch: list[T] = []
        for record in records:
            batch.append(record)
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    return list(carve_batches(batched(), flt, embedder_factory))


def matcher(flt: PersonaFilter) -> Callable[[Any], bool]:
    """The record-level checks of ``flt`` (keywords, regex, origin, hop, attributes) as a
    predicate on objects with ``text`` and ``attributes``, so other code selects personas
    exactly as the store does (the sandbox's targeted events use it)."""
    return _Matcher(flt)
