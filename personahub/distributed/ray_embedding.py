"""Embedding near-duplicate removal on Ray: ANN per shard, then a merge.

Items are cut into shards of consecutive input indices (a ``shard`` column, grouped with
``groupby("shard").map_groups``, so a shard's content never depends on how Ray splits
blocks). Each shard runs the single-machine :class:`EmbeddingDeduper` (HNSW index plus the
exact in-block check) over its own items, in input order. The merge then feeds every
shard's survivors, in global input order, through one more :class:`EmbeddingDeduper` on the
driver, with the vectors the shards sent back (nothing is embedded twice).

How it differs from the single-machine pass: an item a shard dropped as a near-duplicate
of a shard-local survivor stays dropped even if the merge later drops that survivor as a
near-duplicate of an earlier shard's item. One-by-one would then compare the item with the
earlier shard's item instead, and could keep it. Without such chains (A ~ B ~ C with A !~
C across a shard boundary) the kept sets are the same.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from personahub.dedup.embedding import EmbeddingDeduper

# One embedder per worker process, made on its first shard (tasks reuse their process).
_EMBEDDERS: dict[int, Any] = {}


def _dedup_shard(
    group: dict[str, np.ndarray],
    threshold: float,
    embedder_factory: Callable[[], Any] | None,
) -> dict[str, Any]:
    """Embedding dedup of one shard (embeds texts when no vectors came); its survivors."""
    order = np.argsort(group["id"], kind="stable")
    ids = group["id"][order]
    if "vector" in group:
        vectors = np.asarray(group["vector"], dtype=np.float32)[order]
    else:
        embedder = _EMBEDDERS.get(id(embedder_factory))
        if embedder is None:
            from personahub.embeddings import get_embedder

            embedder = embedder_factory() if embedder_factory else get_embedder()
            _EMBEDDERS[id(embedder_factory)] = embedder
        texts = [str(t) for t in group["text"][order]]
        vectors = np.asarray(embedder.encode(texts), dtype=np.float32)
    deduper = EmbeddingDeduper(threshold)
    keep = np.array(deduper.add_batch(ids.tolist(), vectors), dtype=bool)
    # Only survivors travel back: the merge needs their vectors, nothing else.
    return {"id": ids[keep], "vector": vectors[keep]}


def embedding_dedup_ray(
    items: np.ndarray | list[str],
    threshold: float = 0.9,
    shard_rows: int = 50_000,
    workers: int = 2,
    embedder_factory: Callable[[], Any] | None = None,
) -> np.ndarray:
    """Keep flags (input order) for vectors or texts, deduplicated per shard then merged.

    Ray must be initialised (:func:`personahub.distributed.engine.init_ray`); a local one
    is started otherwise.

    Args:
        items: An ``(n, dim)`` array of vectors, or texts to embed on the workers.
        threshold: Cosine threshold.
        shard_rows: Consecutive items per shard.
        workers: Shard tasks running at once.
        embedder_factory: Makes the embedder on a worker (default: MiniLM).

    Returns:
        One flag per item, True = kept.
    """
    import ray.data

    from personahub.distributed.engine import init_ray

    init_ray()
    n = len(items)
    keep = np.zeros(n, dtype=bool)
    if n == 0:
        return keep
    vectors_given = isinstance(items, np.ndarray)
    field = "vector" if vectors_given else "text"
    rows = [
        {"id": i, "shard": i // shard_rows, field: item}
        for i, item in enumerate(np.asarray(items, dtype=np.float32) if vectors_given else items)
    ]
    survivors = (
        ray.data.from_items(rows)
        .groupby("shard")
        # Tasks, not an actor pool: actors holding every CPU would starve the shuffle.
        .map_groups(
            # Options bound here, not through fn_args: Ray types a group function as taking
            # the batch alone.
            partial(_dedup_shard, threshold=threshold, embedder_factory=embedder_factory),
            batch_format="numpy",
            compute=ray.data.TaskPoolStrategy(size=workers),
        )
    )
    kept_ids: list[np.ndarray] = []
    kept_vectors: list[np.ndarray] = []
    for batch in survivors.iter_batches(batch_format="numpy", batch_size=None):
        kept_ids.append(batch["id"])
        kept_vectors.append(batch["vector"])
    if not kept_ids:
        return keep
    merged_ids = np.concatenate(kept_ids)
    vectors = np.concatenate(kept_vectors)
    order = np.argsort(merged_ids, kind="stable")
    merge = EmbeddingDeduper(threshold)
    flags = merge.add_batch(merged_ids[order].tolist(), vectors[order])
    keep[merged_ids[order][np.array(flags, dtype=bool)]] = True
    return keep
