"""Semantic dedup at scale: the two-stage path against today's full-MiniLM path.

Corpus: the real personas of the shared Persona Hub sample grown to ``--n`` (100,000) by
seeded perturbation (the same set as before). The new path is
:class:`~personahub.dedup.two_stage.TwoStageDeduper` over the whole corpus: static token
vectors find candidates through the ANN index, and only texts with a candidate are embedded
with MiniLM, on the default (fastest) backend: ONNX Runtime when installed. Today's path
(every text embedded with MiniLM on sentence-transformers/torch, then
:class:`~personahub.dedup.embedding.EmbeddingDeduper`) is timed in the same run on the first
``--subset`` (10,000) texts and scaled linearly to ``--n``. Dedup is sequential (a text is
dropped for an earlier kept one), so the new path's decisions on its first ``--subset``
texts are compared with today's on the subset for the agreement figure.

    .venv/bin/python benchmarks/dedup_embedding.py                     # 100,000
    .venv/bin/python benchmarks/dedup_embedding.py --n 20000 --subset 2000   # quick run

Figures: MiniLM texts/s on torch and on the default backend (same texts), wall time of
both paths and the speed-up (target >= 10x), decision agreement on the subset (target >=
99.5%), and peak RSS against one n x n float32 matrix.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import grow, load_personas, peak_rss_mib, result_line
from personahub.dedup.embedding import EmbeddingDeduper
from personahub.dedup.static import get_static_embedder
from personahub.dedup.two_stage import TwoStageDeduper
from personahub.embeddings import get_embedder


def texts_per_second(encode: Callable[[list[str]], object], texts: list[str]) -> float:
    """Throughput of ``encode(texts)`` after one warm-up batch."""
    encode(texts[:32])
    started = time.perf_counter()
    encode(texts)
    return len(texts) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="personas in the corpus")
    parser.add_argument("--subset", type=int, default=10_000, help="size of the full-path run")
    parser.add_argument("--threshold", type=float, default=0.9, help="MiniLM cosine threshold")
    parser.add_argument("--candidates", type=float, default=0.7, help="static cosine threshold")
    parser.add_argument("--speed-texts", type=int, default=1000, help="texts for texts/s")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    texts = grow(load_personas(), args.n, seed=args.seed)
    subset = texts[: args.subset]
    reference, embedder = get_embedder(backend="torch"), get_embedder()
    static = get_static_embedder()
    print(f"corpus: {len(texts):,} personas (seed {args.seed}); subset {len(subset):,}")

    sample = texts[-args.speed_texts :]
    before = texts_per_second(reference.encode, sample)
    after = texts_per_second(embedder.encode, sample)
    print(f"MiniLM encoding: {before:,.1f} texts/s before (torch), {after:,.1f} texts/s after "
          f"({type(embedder).__name__}), same {len(sample):,} texts")  # fmt: skip

    started = time.perf_counter()
    full_vectors = reference.encode(subset)
    full = EmbeddingDeduper(threshold=args.threshold).add_batch(
        list(range(len(subset))), full_vectors
    )
    full_s = time.perf_counter() - started
    scaled = full_s * len(texts) / len(subset)
    print(f"full MiniLM path on the subset: {full_s:,.1f} s -> {scaled:,.0f} s scaled to "
          f"{len(texts):,}; kept {sum(full):,} of {len(subset):,}")  # fmt: skip

    started = time.perf_counter()
    deduper = TwoStageDeduper(args.threshold, embedder, args.candidates, static)
    decisions = deduper.add_batch(list(range(len(texts))), texts)
    new_s = time.perf_counter() - started
    print(f"two-stage path on {len(texts):,}: {new_s:,.1f} s; kept {sum(decisions):,}; MiniLM "
          f"embedded {deduper.encoded:,} texts ({deduper.encoded / len(texts):.1%})")  # fmt: skip
    same = sum(a == b for a, b in zip(decisions[: len(subset)], full, strict=True))
    agreement = same / len(subset)

    rss = peak_rss_mib()
    matrix_mib = len(texts) ** 2 * 4 / 2**20
    print(f"peak RSS: {rss:,.0f} MiB (models included); an n x n float32 matrix: "
          f"{matrix_mib:,.0f} MiB = {matrix_mib / rss:,.0f}x that")  # fmt: skip
    print(result_line("dedup_embedding", "peak RSS (MiB)", rss, "<", matrix_mib / 10))
    print(result_line("dedup_embedding", "decision agreement on subset", agreement, ">=", 0.995))
    print(result_line("dedup_embedding", "speed-up vs full MiniLM (x)", scaled / new_s, ">=", 10))
    return 0


if __name__ == "__main__":
    sys.exit(main())
