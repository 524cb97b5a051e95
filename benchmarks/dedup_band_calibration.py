"""Calibrate the two-stage dedup's confident band on a corpus apart from the benchmark's.

Above a static cosine ``h`` (the confident band) :class:`~personahub.dedup.two_stage.
TwoStageDeduper` drops a text for its best kept candidate without embedding it with MiniLM.
This script measures, for each ``h`` on a grid, how often that changes a decision: corpus
the same perturbed set as ``benchmarks/dedup_embedding.py`` but grown with another seed
(default 1; the benchmark uses 0), the first ``--n`` texts of a 100,000 corpus (so the
density of near-duplicates is the benchmark subset's). Per ``h`` it prints:

* the precision of candidate pairs in the band: the share with MiniLM cosine >= 0.9;
* the agreement of keep/drop decisions with a full MiniLM pass (every text embedded,
  :class:`~personahub.dedup.embedding.EmbeddingDeduper`);
* the share of texts the two-stage path embedded with MiniLM.

and picks the smallest ``h`` whose agreement is at least ``--agreement`` (99.75%: half the
disagreement the benchmark's 99.5% target allows, a margin for a different corpus). The
default :data:`~personahub.dedup.two_stage.CONFIDENT_THRESHOLD` is set from its output.

    .venv/bin/python benchmarks/dedup_band_calibration.py
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import grow, load_personas
from personahub.dedup.embedding import EmbeddingDeduper, earlier_neighbours
from personahub.dedup.static import get_static_embedder
from personahub.dedup.two_stage import TwoStageDeduper
from personahub.embeddings import get_embedder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8000, help="texts in the calibration corpus")
    parser.add_argument("--seed", type=int, default=1, help="corpus seed (not the benchmark's 0)")
    parser.add_argument("--threshold", type=float, default=0.9, help="MiniLM cosine threshold")
    parser.add_argument("--candidates", type=float, default=0.7, help="static cosine threshold")
    parser.add_argument("--agreement", type=float, default=0.9975, help="required agreement")
    args = parser.parse_args()

    texts = grow(load_personas(), 100_000, seed=args.seed)[: args.n]
    static = get_static_embedder()
    full_vectors = get_embedder().encode(texts)
    keys = list(range(len(texts)))
    full = np.array(EmbeddingDeduper(args.threshold).add_batch(keys, full_vectors))
    pairs = [
        (s, float(full_vectors[i] @ full_vectors[j]))
        for i, row in enumerate(earlier_neighbours(static.encode(texts), args.candidates))
        for j, s in row
    ]
    scores = np.array(pairs)
    print(f"calibration corpus: {len(texts):,} texts (seed {args.seed}); full MiniLM pass "
          f"kept {int(full.sum()):,}; {len(pairs):,} candidate pairs")  # fmt: skip

    def stored(found: Sequence[Hashable], _texts: Sequence[str]) -> np.ndarray:
        return full_vectors[list(found)]

    chosen = None
    for h in [*np.arange(0.95, 1.0, 0.005).round(3).tolist(), None]:
        deduper = TwoStageDeduper(args.threshold, None, args.candidates, static,
                                  confident_threshold=h)  # fmt: skip
        agreement = float(np.mean(np.array(deduper.add_batch(keys, texts, stored)) == full))
        band = scores[scores[:, 0] >= h] if h is not None else scores[:0]
        precision = float(np.mean(band[:, 1] >= args.threshold)) if len(band) else 1.0
        print(f"h={h if h is not None else 'none':>5}: band pairs {len(band):>6,} "
              f"precision {precision:.4f}; agreement {agreement:.5f}; MiniLM embedded "
              f"{deduper.encoded / len(texts):.1%}")  # fmt: skip
        if chosen is None and h is not None and agreement >= args.agreement:
            chosen = h
    print(f"chosen confident band: static cosine >= {chosen} (smallest h with agreement >= "
          f"{args.agreement})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
