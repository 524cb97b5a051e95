"""MinHash near-duplicate removal on Ray Data.

The stages, and where they run:

1. **Signatures** (Ray, ``map_batches`` over blocks of texts): our :class:`MinHasher` per
   block, then the LSH band keys of :meth:`MinHashDeduper.band_hashes`: the same b x r band
   layout (datasketch's for the threshold; 5 bands x 25 rows at 0.9 and 128 permutations)
   and the same 64-bit band hashes, so candidates are exactly the single-machine ones.
2. **Groupby on band keys** (Ray): one row per (band, key, item), grouped by a hash
   partition of the band key (``groupby("part").map_groups``); each partition groups its
   exact keys with a numpy sort and returns only the buckets with two or more items.
3. **Resolution** (driver, numpy over O(n) arrays): candidates are item pairs sharing a
   bucket; a candidate pair is a duplicate when its estimated Jaccard (signature agreement)
   reaches the threshold, as in ``MinHashDeduper(verify=True)``. Two resolutions:

   * ``greedy`` (default): the single-machine decision rule, "an item is dropped when an
     earlier *kept* item is a duplicate of it", computed in parallel rounds. Each round
     keeps every undecided item whose earlier bucket-mates are all decided (none of them
     kept and similar), and drops every undecided item that a newly kept bucket-mate before
     it is similar to. Every pair is verified at most once and only against kept items, so
     the work stays near linear. The result is the lexicographically first maximal
     independent set of the duplicate graph, which is exactly what the one-by-one
     :class:`MinHashDeduper` computes: the same kept set.
   * ``components``: connected components over verified duplicate pairs, keeping the lowest
     input index of each component. Candidate pairs are each bucket's items paired with the
     bucket's lowest-index item and with their predecessor in the bucket (a star and a path,
     so buckets of hundreds of copies stay linear; a pair both of whose items are neither
     first nor neighbours in any shared bucket is not checked, so components can be finer
     than those of all pairs). This merges chains: with A ~ B and B ~ C but A !~ C, one-by-one
     keeps A and C (C is no near-duplicate of the kept A; the B it resembles was dropped),
     components keep only A. On corpora with dense clusters of near-copies it drops much
     more than one-by-one (see docs/scaling.md for the measured agreement).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from personahub.dedup import DedupReport
from personahub.dedup.minhash import DEFAULT_SCHEME, MinHashDeduper

RESOLUTIONS = ("greedy", "components")
# Pairs verified per numpy slice: 16k pairs x 128 permutations x 2 signatures ~ 16 MiB.
_VERIFY_STEP = 16_384


@dataclass
class RayDedupResult:
    """Keep/drop decisions of a Ray dedup run, with what each stage did.

    Attributes:
        keep: One flag per input item, in input order.
        buckets: Multi-item LSH buckets found by the groupby.
        bucket_rows: (bucket, item) rows of those buckets.
        verified_pairs: Candidate pairs checked by estimated Jaccard.
        rounds: Greedy rounds (0 for ``components``).
        seconds: Wall time per stage.
    """

    keep: np.ndarray
    buckets: int = 0
    bucket_rows: int = 0
    verified_pairs: int = 0
    rounds: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def kept(self) -> int:
        return int(self.keep.sum())


class _Signer:
    """Ray actor body: signatures and band keys of a block (the vocabulary cache stays warm
    across the blocks an actor gets)."""

    def __init__(self, threshold: float, num_perm: int, seed: int, scheme: str) -> None:
        self.deduper = MinHashDeduper(threshold, num_perm, seed, scheme)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        signatures = self.deduper.hasher.signatures(batch["text"].tolist())
        return {
            "id": batch["id"],
            "sig": signatures,
            "bands": self.deduper.band_hashes(signatures),
        }


def _explode_bands(batch: dict[str, np.ndarray], partitions: int) -> dict[str, np.ndarray]:
    """One row per (band, band key, item), with its hash partition."""
    bands = batch["bands"]
    n, b = bands.shape
    keys = bands.reshape(-1)
    band = np.tile(np.arange(b, dtype=np.uint8), n)
    return {
        "key": keys,
        "band": band,
        "id": np.repeat(batch["id"], b),
        # Mixing the band in spreads one band's keys over every partition.
        "part": ((keys ^ band.astype(np.uint64)) % np.uint64(partitions)).astype(np.int64),
    }


def _multi_buckets(group: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Within one partition: the rows of exact (band, key) buckets holding 2+ items, sorted
    by bucket then item, with a bucket number local to the partition."""
    key, band, ids = group["key"], group["band"], group["id"]
    order = np.lexsort((ids, key, band))
    key, band, ids = key[order], band[order], ids[order]
    new = np.ones(len(ids), dtype=bool)
    new[1:] = (key[1:] != key[:-1]) | (band[1:] != band[:-1])
    bucket = np.cumsum(new) - 1
    sizes = np.bincount(bucket)
    multi = sizes[bucket] > 1
    part = group["part"][:1]
    return {
        "part": np.repeat(part, int(multi.sum())),
        "bucket": bucket[multi],
        "id": ids[multi],
    }


def _verify(signatures: np.ndarray, a: np.ndarray, b: np.ndarray, min_equal: int) -> np.ndarray:
    """Whether each pair (a[i], b[i]) reaches the signature agreement of the threshold."""
    passed = np.empty(len(a), dtype=bool)
    for start in range(0, len(a), _VERIFY_STEP):
        sl = slice(start, start + _VERIFY_STEP)
        equal = np.count_nonzero(signatures[a[sl]] == signatures[b[sl]], axis=1)
        passed[sl] = equal >= min_equal
    return passed


def _greedy(
    n: int, starts: np.ndarray, ids: np.ndarray, signatures: np.ndarray, min_equal: int
) -> tuple[np.ndarray, int, int]:
    """One-by-one dedup decisions over the buckets, in parallel rounds.

    Args:
        n: Items.
        starts: Row where each bucket starts (rows sorted by bucket, then item).
        ids: The item of each row.
        signatures: ``(n, num_perm)``.
        min_equal: Signature agreement needed for a duplicate.

    Returns:
        Keep flags, rounds, and pairs verified.
    """
    state = np.zeros(n, dtype=np.int8)  # 0 undecided, 1 kept, 2 dropped
    in_bucket = np.zeros(n, dtype=bool)
    in_bucket[ids] = True
    state[~in_bucket] = 1  # shares no band with anything: nothing can drop it
    sizes = np.diff(np.append(starts, len(ids)))
    bucket_of = np.repeat(np.arange(len(starts)), sizes)
    ends = (starts + sizes)[bucket_of]
    row_start = starts[bucket_of]
    fresh = np.zeros(n, dtype=bool)  # kept in the previous round, not yet compared
    rounds = verified = 0
    while (state == 0).any():
        rounds += 1
        row_state = state[ids]
        # Later rows of a bucket are compared with each item kept since the last round.
        new_rows = np.flatnonzero(fresh[ids])
        counts = ends[new_rows] - new_rows - 1
        u_rows = np.repeat(new_rows, counts)
        offsets = np.arange(len(u_rows)) - np.repeat(np.cumsum(counts) - counts, counts)
        v_rows = u_rows + 1 + offsets
        undecided_pair = row_state[v_rows] == 0
        u_rows, v_rows = u_rows[undecided_pair], v_rows[undecided_pair]
        verified += len(u_rows)
        hit = _verify(signatures, ids[u_rows], ids[v_rows], min_equal)
        dropped = np.zeros(n, dtype=bool)
        dropped[ids[v_rows[hit]]] = True
        # Blocked: some earlier bucket-mate is still undecided (it may yet be kept and
        # similar), so the item waits. The lowest undecided item is never blocked.
        undecided_before = np.cumsum(row_state == 0) - (row_state == 0)
        blocked_rows = undecided_before - undecided_before[row_start] > 0
        blocked = np.zeros(n, dtype=bool)
        blocked[ids[blocked_rows]] = True
        undecided = state == 0
        state[undecided & dropped] = 2
        newly_kept = undecided & ~dropped & ~blocked
        state[newly_kept] = 1
        fresh = newly_kept
    # Items kept in the last round have no undecided rows after them left to compare.
    return state == 1, rounds, verified


def _components(
    n: int, starts: np.ndarray, ids: np.ndarray, signatures: np.ndarray, min_equal: int
) -> tuple[np.ndarray, int]:
    """Keep the lowest item of each connected component of verified pairs.

    The pairs of a bucket are each item with the bucket's first item (a star) and with its
    predecessor (a path): linear in the bucket size where all pairs would be quadratic.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    sizes = np.diff(np.append(starts, len(ids)))
    first = np.repeat(ids[starts], sizes)
    others = np.ones(len(ids), dtype=bool)
    others[starts] = False
    rows = np.flatnonzero(others)
    path = rows[first[rows] != ids[rows - 1]]  # the second item's predecessor is the first
    a = np.concatenate([first[rows], ids[path - 1]])
    b = np.concatenate([ids[rows], ids[path]])
    hit = _verify(signatures, a, b, min_equal)
    graph = coo_matrix((np.ones(int(hit.sum()), dtype=np.int8), (a[hit], b[hit])), (n, n))
    _, labels = connected_components(graph, directed=False)
    lowest = np.full(labels.max() + 1, n, dtype=np.int64)
    np.minimum.at(lowest, labels, np.arange(n))
    return lowest[labels] == np.arange(n), len(a)


def minhash_dedup_ray(
    texts: list[str],
    threshold: float = 0.9,
    num_perm: int = 128,
    seed: int = 1,
    scheme: str = DEFAULT_SCHEME,
    resolution: str = "greedy",
    workers: int = 2,
    block_rows: int = 20_000,
    partitions: int | None = None,
) -> RayDedupResult:
    """Near-duplicate decisions for ``texts`` (input order) with signatures and LSH on Ray.

    Ray must be initialised (see :func:`personahub.distributed.engine.init_ray`); a local
    one with default settings is started otherwise.

    Args:
        texts: The texts; an item's key is its index.
        threshold: Jaccard threshold (as ``MinHashDeduper``).
        num_perm: MinHash permutations.
        seed: Permutation seed.
        scheme: datasketch permutation scheme.
        resolution: ``greedy`` (the single-machine rule) or ``components``.
        workers: Signature actors and concurrent groupby tasks.
        block_rows: Texts per block.
        partitions: Hash partitions of the band keys (default ``4 * workers``).

    Returns:
        The decisions and stage statistics.
    """
    if resolution not in RESOLUTIONS:
        raise ValueError(f"unknown resolution {resolution!r}; choose from {RESOLUTIONS}")
    import pyarrow as pa
    import ray.data

    from personahub.distributed.engine import init_ray

    init_ray()
    n = len(texts)
    deduper = MinHashDeduper(threshold, num_perm, seed, scheme)
    min_equal = int(np.ceil(threshold * num_perm - 1e-9))
    result = RayDedupResult(keep=np.ones(n, dtype=bool))
    if n == 0:
        return result
    clock = time.perf_counter()
    tables = [
        pa.table({"id": np.arange(s, min(n, s + block_rows)), "text": texts[s : s + block_rows]})
        for s in range(0, n, block_rows)
    ]
    signed = (
        ray.data.from_arrow(tables)
        .map_batches(
            _Signer,
            fn_constructor_args=(threshold, num_perm, seed, scheme),
            batch_format="numpy",
            batch_size=block_rows,
            compute=ray.data.ActorPoolStrategy(size=workers),
        )
        .materialize()
    )
    signatures = np.empty((n, num_perm), dtype=deduper.hasher.dtype)
    for batch in signed.iter_batches(batch_format="numpy", batch_size=None):
        signatures[batch["id"]] = batch["sig"]
    result.seconds["signatures"] = time.perf_counter() - clock

    clock = time.perf_counter()
    parts = partitions or 4 * workers
    grouped = (
        signed.select_columns(["id", "bands"])
        .map_batches(_explode_bands, fn_kwargs={"partitions": parts}, batch_format="numpy")
        .groupby("part", num_partitions=parts)
        .map_groups(
            _multi_buckets,
            batch_format="numpy",
            compute=ray.data.TaskPoolStrategy(size=workers),
        )
    )
    chunks = list(grouped.iter_batches(batch_format="numpy", batch_size=None))
    result.seconds["groupby"] = time.perf_counter() - clock

    clock = time.perf_counter()
    part = np.concatenate([c["part"] for c in chunks]) if chunks else np.empty(0, np.int64)
    local = np.concatenate([c["bucket"] for c in chunks]) if chunks else np.empty(0, np.int64)
    ids = np.concatenate([c["id"] for c in chunks]) if chunks else np.empty(0, np.int64)
    # Batches may split or merge partitions: order rows by (partition, bucket, item) again.
    order = np.lexsort((ids, local, part))
    part, local, ids = part[order], local[order], ids[order]
    new = np.ones(len(ids), dtype=bool)
    new[1:] = (part[1:] != part[:-1]) | (local[1:] != local[:-1])
    starts = np.flatnonzero(new)
    result.buckets, result.bucket_rows = len(starts), len(ids)
    if resolution == "greedy":
        keep, result.rounds, result.verified_pairs = _greedy(n, starts, ids, signatures, min_equal)
    else:
        keep, result.verified_pairs = _components(n, starts, ids, signatures, min_equal)
    result.keep = keep
    result.seconds["resolve"] = time.perf_counter() - clock
    return result


def dedup_store_ray(
    store: Any,
    stages: Sequence[str],
    minhash_threshold: float = 0.9,
    embedding_threshold: float = 0.9,
    dry_run: bool = False,
    workers: int = 2,
) -> DedupReport:
    """``personahub dedup --engine ray``: the store's near-duplicates found on Ray.

    Stages run in order over the survivors of the previous one, as in the local pipeline;
    with the ``greedy`` MinHash resolution the decisions are the local engine's. Each group
    keeps its lowest id.
    """
    from personahub.distributed.ray_embedding import embedding_dedup_ray

    ids, texts = [], []
    for persona in store.iter_personas():
        ids.append(persona.id)
        texts.append(persona.text)
    keep = np.ones(len(ids), dtype=bool)
    report = DedupReport(dry_run=dry_run, total=len(ids))
    for stage in stages:
        alive = np.flatnonzero(keep)
        chosen = [texts[i] for i in alive]
        if stage == "minhash":
            flags = minhash_dedup_ray(chosen, threshold=minhash_threshold, workers=workers).keep
        else:
            flags = embedding_dedup_ray(chosen, threshold=embedding_threshold, workers=workers)
        flags = np.asarray(flags, dtype=bool)
        report.dropped[stage] = int((~flags).sum())
        keep[alive[~flags]] = False
    report.kept = int(keep.sum())
    drop = [ids[i] for i in np.flatnonzero(~keep)]
    if drop and not dry_run:
        report.deleted = store.delete_personas(drop)
    return report
