"""Embedding dedup at scale: time and memory of 100,000 personas, and ANN recall.

Corpus: the real personas of the shared Persona Hub sample grown to ``--n`` (100,000) by
seeded perturbation. Texts are encoded with the packaged MiniLM in batches and fed to
:class:`EmbeddingDeduper` as they come, so no more than one batch of vectors is held
besides the index (and the recall subset).

    .venv/bin/python benchmarks/dedup_embedding.py            # 100,000 (encoding dominates)
    .venv/bin/python benchmarks/dedup_embedding.py --n 20000  # quick run

Figures: wall time (encoding and dedup separately), peak RSS against what one n x n float32
similarity matrix would need, and the recall of duplicate pairs (cosine >= threshold) found
by the HNSW index against exact search on a seeded 10,000 subset (target >= 0.98).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from usearch.index import Index

from benchmarks._common import Ticker, grow, load_personas, peak_rss_mib, result_line
from personahub.dedup.embedding import EmbeddingDeduper, earlier_neighbours
from personahub.embeddings import get_embedder


def pair_recall(
    vectors: np.ndarray, threshold: float, k: int, deduper: EmbeddingDeduper
) -> tuple[float, int]:
    """Share of the exact duplicate pairs that an ANN index with ``deduper``'s options finds
    among each item's k nearest neighbours, and the number of exact pairs."""
    exact = {
        (j, i) for i, pairs in enumerate(earlier_neighbours(vectors, threshold)) for j, _ in pairs
    }
    index = Index(
        ndim=vectors.shape[1],
        metric="cos",
        dtype=deduper.dtype,
        connectivity=deduper.connectivity,
        expansion_search=deduper.expansion_search,
    )
    index.add(np.arange(len(vectors), dtype=np.uint64), vectors)
    matches = index.search(vectors, k)
    keys = np.asarray(matches.keys).reshape(len(vectors), -1)
    sims = 1.0 - np.asarray(matches.distances, dtype=np.float64).reshape(len(vectors), -1)
    found = set()
    for i in range(len(vectors)):
        for j, sim in zip(keys[i].tolist(), sims[i].tolist(), strict=True):
            if j != i and sim >= threshold:
                found.add((min(i, j), max(i, j)))
    if not exact:
        return 1.0, 0
    return len(exact & found) / len(exact), len(exact)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="personas in the corpus")
    parser.add_argument("--recall-n", type=int, default=10_000, help="size of the recall subset")
    parser.add_argument("--threshold", type=float, default=0.9, help="cosine threshold")
    parser.add_argument("--batch", type=int, default=2048, help="texts encoded per batch")
    parser.add_argument("--k", type=int, default=32, help="neighbours asked per item for recall")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    texts = grow(load_personas(), args.n, seed=args.seed)
    embedder = get_embedder()
    print(f"corpus: {len(texts):,} personas (seed {args.seed}); embedder dim {embedder.dim}")
    subset = sorted(
        random.Random(args.seed + 1).sample(range(len(texts)), min(args.recall_n, len(texts)))
    )
    subset_vectors = np.empty((len(subset), embedder.dim), dtype=np.float32)
    subset_at = {position: row for row, position in enumerate(subset)}

    deduper = EmbeddingDeduper(threshold=args.threshold)
    ticker = Ticker("encode + dedup", len(texts), every=30.0)
    encode_s = dedup_s = 0.0
    kept = 0
    started = time.perf_counter()
    for start in range(0, len(texts), args.batch):
        chunk = texts[start : start + args.batch]
        t0 = time.perf_counter()
        vectors = embedder.encode(chunk, batch_size=64)
        t1 = time.perf_counter()
        kept += sum(deduper.add_batch(list(range(start, start + len(chunk))), vectors))
        dedup_s += time.perf_counter() - t1
        encode_s += t1 - t0
        for offset in range(len(chunk)):
            row = subset_at.get(start + offset)
            if row is not None:
                subset_vectors[row] = vectors[offset]
        ticker.update(start + len(chunk))
    wall = time.perf_counter() - started
    rss = peak_rss_mib()
    matrix_gib = len(texts) ** 2 * 4 / 2**30
    print(
        f"kept {kept:,} of {len(texts):,} "
        f"(dropped {len(texts) - kept:,} at cosine >= {args.threshold})"
    )
    print(
        f"wall time: {wall:,.1f} s (encoding {encode_s:,.1f} s = {len(texts) / encode_s:,.0f}/s, "
        f"dedup {dedup_s:,.1f} s = {len(texts) / max(dedup_s, 1e-9):,.0f}/s)"
    )
    print(
        f"peak RSS: {rss:,.0f} MiB (model included); an n x n float32 similarity matrix "
        f"would need {matrix_gib:,.2f} GiB = {matrix_gib * 1024 / rss:,.1f}x that"
    )

    recall, pairs = pair_recall(subset_vectors, args.threshold, args.k, deduper)
    ann = EmbeddingDeduper(threshold=args.threshold).add_batch(
        list(range(len(subset))), subset_vectors
    )
    exact = EmbeddingDeduper(threshold=args.threshold, block_size=len(subset)).add_batch(
        list(range(len(subset))), subset_vectors
    )
    agree = sum(a == b for a, b in zip(ann, exact, strict=True)) / len(subset)
    print(
        f"recall subset: {len(subset):,} personas, {pairs:,} exact duplicate pairs; keep/drop "
        f"agreement of ANN dedup with exact dedup: {agree:.4%}"
    )
    print(
        result_line(
            "dedup_embedding", f"ANN recall of duplicate pairs (k={args.k})", recall, ">=", 0.98
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
