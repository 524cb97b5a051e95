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

The new path runs in a child process that loads only what it needs (the static model,
MiniLM on ONNX Runtime, the index; no torch), so its peak RSS is its own: judged against one
n x n float32 matrix at the run's n (target: below a tenth of it). It uses the confident band
(``--confident-band``, default the calibrated
:data:`~personahub.dedup.two_stage.CONFIDENT_THRESHOLD`; ``off`` re-scores every candidate).

Figures: MiniLM texts/s on torch, on the default backend and on the opt-in int8 model (same
texts), wall time of both paths and the speed-up (target >= 10x), decision agreement on the
subset (target >= 99.5%), and peak RSS against one n x n float32 matrix.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import grow, load_personas, peak_rss_mib, result_line


def texts_per_second(encode: Callable[[list[str]], object], texts: list[str]) -> float:
    """Throughput of ``encode(texts)`` after one warm-up batch."""
    encode(texts[:32])
    started = time.perf_counter()
    encode(texts)
    return len(texts) / (time.perf_counter() - started)


def own_peak_rss_mib() -> float:
    """Peak RSS of this process image: ``VmHWM``, which starts afresh at exec. (getrusage's
    ``ru_maxrss`` does not on Linux: a child started from a big parent reports the parent's
    peak.) Elsewhere, :func:`peak_rss_mib`."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return peak_rss_mib()


def two_stage_child(args: argparse.Namespace) -> None:
    """The new path alone in this process: decisions, time and peak RSS to ``args.child``."""
    from personahub.dedup.static import get_static_embedder
    from personahub.dedup.two_stage import TwoStageDeduper
    from personahub.embeddings import get_embedder

    texts = grow(load_personas(), args.n, seed=args.seed)
    started = time.perf_counter()
    deduper = TwoStageDeduper(args.threshold, get_embedder(), args.candidates,
                              get_static_embedder(), confident_threshold=args.band)  # fmt: skip
    decisions = deduper.add_batch(list(range(len(texts))), texts)
    result = {
        "seconds": time.perf_counter() - started,
        "decisions": decisions,
        "encoded": deduper.encoded,
        "confident": deduper.confident,
        "rss_mib": own_peak_rss_mib(),
        "torch": "torch" in sys.modules,
    }
    Path(args.child).write_text(json.dumps(result))


def run_child(args: argparse.Namespace) -> dict:
    """Run :func:`two_stage_child` in a fresh interpreter and return what it measured."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        band = "off" if args.band is None else str(args.band)
        subprocess.run(
            [sys.executable, __file__, "--n", str(args.n), "--seed", str(args.seed),
             "--threshold", str(args.threshold), "--candidates", str(args.candidates),
             "--confident-band", band, "--child", str(out)],
            check=True,
        )  # fmt: skip
        return json.loads(out.read_text())


def band_value(value: str) -> float | None:
    """``--confident-band``: a static cosine, or ``off``."""
    return None if value == "off" else float(value)


def main() -> int:
    from personahub.dedup.two_stage import CONFIDENT_THRESHOLD

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="personas in the corpus")
    parser.add_argument("--subset", type=int, default=10_000, help="size of the full-path run")
    parser.add_argument("--threshold", type=float, default=0.9, help="MiniLM cosine threshold")
    parser.add_argument("--candidates", type=float, default=0.7, help="static cosine threshold")
    parser.add_argument("--confident-band", dest="band", type=band_value,
                        default=CONFIDENT_THRESHOLD, help="static cosine of the confident "
                        "band, or off")  # fmt: skip
    parser.add_argument("--speed-texts", type=int, default=1000, help="texts for texts/s")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        two_stage_child(args)
        return 0

    from personahub.dedup.embedding import EmbeddingDeduper
    from personahub.embeddings import get_embedder

    texts = grow(load_personas(), args.n, seed=args.seed)
    subset = texts[: args.subset]
    reference, embedder = get_embedder(backend="torch"), get_embedder()
    print(f"corpus: {len(texts):,} personas (seed {args.seed}); subset {len(subset):,}; "
          f"confident band: static cosine >= {args.band or 'off'}", flush=True)  # fmt: skip

    sample = texts[-args.speed_texts :]
    before = texts_per_second(reference.encode, sample)
    after = texts_per_second(embedder.encode, sample)
    int8 = texts_per_second(get_embedder(backend="int8").encode, sample)
    print(f"MiniLM encoding: {before:,.1f} texts/s before (torch), {after:,.1f} texts/s after "
          f"({type(embedder).__name__}), same {len(sample):,} texts; int8 ONNX (opt-in, not "
          f"the default) {int8:,.1f} texts/s", flush=True)  # fmt: skip

    started = time.perf_counter()
    full_vectors = reference.encode(subset)
    full = EmbeddingDeduper(threshold=args.threshold).add_batch(
        list(range(len(subset))), full_vectors
    )
    full_s = time.perf_counter() - started
    scaled = full_s * len(texts) / len(subset)
    print(f"full MiniLM path on the subset: {full_s:,.1f} s -> {scaled:,.0f} s scaled to "
          f"{len(texts):,}; kept {sum(full):,} of {len(subset):,}", flush=True)  # fmt: skip

    new = run_child(args)
    decisions = new["decisions"]
    print(f"two-stage path on {len(texts):,}: {new['seconds']:,.1f} s; kept {sum(decisions):,}; "
          f"MiniLM embedded {new['encoded']:,} texts ({new['encoded'] / len(texts):.1%}); "
          f"dropped in the confident band without MiniLM: {new['confident']:,}")  # fmt: skip
    same = sum(a == b for a, b in zip(decisions[: len(subset)], full, strict=True))
    agreement = same / len(subset)

    matrix_mib = len(texts) ** 2 * 4 / 2**20
    print(f"peak RSS of the two-stage path (child process; torch loaded: {new['torch']}): "
          f"{new['rss_mib']:,.0f} MiB (models included); an n x n float32 matrix at n = "
          f"{len(texts):,}: {matrix_mib:,.0f} MiB = {matrix_mib / new['rss_mib']:,.1f}x that; "
          f"this (parent) process with torch: {peak_rss_mib():,.0f} MiB")  # fmt: skip
    print(result_line("dedup_embedding", "peak RSS of the two-stage path (MiB, target a tenth "
                      "of n x n)", new["rss_mib"], "<", matrix_mib / 10))  # fmt: skip
    print(result_line("dedup_embedding", "decision agreement on subset", agreement, ">=", 0.995))
    print(result_line("dedup_embedding", "speed-up vs full MiniLM (x)", scaled / new["seconds"],
                      ">=", 10))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
