"""Similarity search over a store's persisted vectors (``--similar-to``).

The first search with an embedder computes the vectors the store lacks and stores them
(:class:`~personahub.store.vectors.StoredVectors`); every later one encodes only the query,
scores all stored vectors in one matrix-vector product over the store's memory-mapped vector
file (:mod:`personahub.store.vector_cache`, rebuilt whenever the vectors changed), and reads
just the persona rows it returns. The selection is the carver's (:mod:`personahub.store.filters`):
SQL conditions and record checks, then the similarity threshold, then ``top_k`` (most
similar first, ties in id order), then the seeded ``sample``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlmodel import col, select

from personahub.store.filters import PersonaFilter, matcher, reservoir, sql_conditions
from personahub.store.models import Persona
from personahub.store.vector_cache import matrix
from personahub.store.vectors import StoredVectors

if TYPE_CHECKING:
    from personahub.store.store import PersonaStore

_ROWS_PER_READ = 500


def _ranked_ids(vectors: StoredVectors, flt: PersonaFilter) -> tuple[np.ndarray, np.ndarray]:
    """Ids and cosines of the personas at or above the threshold, in the order they are
    selected: best first (ties by id) for ``top_k``, else id order."""
    query = vectors.encode([str(flt.similar_to)])[0]
    ids, rows = matrix(vectors)
    if not len(ids):
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    scores = np.asarray(rows) @ query
    above = scores >= flt.min_similarity
    all_ids, all_scores = np.asarray(ids)[above], scores[above]
    if flt.top_k is not None:
        order = np.lexsort((all_ids, -all_scores))
        all_ids, all_scores = all_ids[order], all_scores[order]
    return all_ids, all_scores


def similar_personas(
    store: PersonaStore,
    flt: PersonaFilter,
    embedder: Any | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[Persona, float]]:
    """The personas a ``similar_to`` filter selects, each with its cosine to the query.

    Args:
        store: The store.
        flt: A filter with ``similar_to``.
        embedder: Embedder (default: the packaged MiniLM, loaded when first needed).
        progress: Called with counts of vectors computed for personas that had none.

    Yields:
        (persona, cosine) pairs: most similar first with ``top_k``, else in id order.
    """
    if flt.similar_to is None:
        raise ValueError("similar_personas needs a filter with similar_to")
    vectors = StoredVectors(store, embedder)
    # Two counts decide whether any persona lacks a vector: far cheaper than fill()'s join
    # over every persona, which would otherwise dominate a search on a large store.
    if vectors.missing():
        vectors.fill(progress=progress)
    ids, scores = _ranked_ids(vectors, flt)
    check = matcher(flt)
    conditions = sql_conditions(flt)

    def matched() -> Iterator[tuple[Persona, float]]:
        for start in range(0, len(ids), _ROWS_PER_READ):
            chunk = ids[start : start + _ROWS_PER_READ].tolist()
            with store.session() as session:
                query = select(Persona).where(col(Persona.id).in_(chunk), *conditions)
                rows = {p.id: p for p in session.exec(query)}
            for persona_id, score in zip(chunk, scores[start : start + len(chunk)], strict=True):
                row = rows.get(persona_id)
                if row is not None and check(row):
                    yield row, float(score)

    selected: Iterator[tuple[Persona, float]] = matched()
    if flt.top_k is not None:
        selected = itertools.islice(selected, flt.top_k)
    if flt.sample is not None:
        yield from reservoir(selected, flt.sample, flt.seed)
    else:
        yield from selected
