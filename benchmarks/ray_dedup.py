"""MinHash dedup on Ray Data with 1 worker and with 2, against the single-machine deduper.

Corpus: the 5,000 real personas of the shared Persona Hub sample, grown to 1,000,000 by
seeded perturbation (word swaps, drops, fillers), so near-duplicates exist on both sides of
the 0.9 threshold. Each Ray run starts its own local Ray with as many CPUs as workers
(startup not timed) and runs signatures, the band-key groupby and the resolution.

    .venv/bin/python benchmarks/ray_dedup.py              # 1,000,000 personas
    .venv/bin/python benchmarks/ray_dedup.py --n 100000   # quick run

Figures: the scaling ratio (wall with 1 worker / wall with 2), and the agreement of the
greedy resolution's keep/drop decisions with ``MinHashDeduper`` (target >= 99.5%; it is
the same rule, so 100% is expected). The agreement of the ``components`` resolution, which
merges chains, is printed too.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks._common import grow, load_personas, peak_rss_mib, result_line
from personahub.dedup.minhash import MinHashDeduper


def single_machine(texts: list[str], batch: int = 10_000) -> tuple[np.ndarray, float]:
    """MinHashDeduper's decisions over ``texts`` in batches, and the wall time."""
    deduper = MinHashDeduper(threshold=0.9, num_perm=128)
    flags: list[bool] = []
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        chunk = texts[start : start + batch]
        flags += deduper.add_batch(list(range(start, start + len(chunk))), chunk)
    return np.array(flags, dtype=bool), time.perf_counter() - started


def on_ray(texts: list[str], workers: int, resolution: str, block_rows: int) -> tuple[Any, float]:
    """A Ray run with a fresh local Ray of ``workers`` CPUs; the result and its wall time."""
    import ray

    from personahub.distributed.engine import init_ray
    from personahub.distributed.ray_dedup import minhash_dedup_ray

    init_ray(num_cpus=workers)
    try:
        started = time.perf_counter()
        result = minhash_dedup_ray(
            texts, resolution=resolution, workers=workers, block_rows=block_rows
        )
        return result, time.perf_counter() - started
    finally:
        ray.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="personas in the corpus")
    parser.add_argument("--block-rows", type=int, default=25_000, help="texts per Ray block")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-components", action="store_true", help="skip the components resolution run"
    )
    args = parser.parse_args()

    texts = grow(load_personas(), args.n, seed=args.seed)
    print(f"corpus: {len(texts):,} personas (seed {args.seed})", flush=True)
    local, local_wall = single_machine(texts)
    print(f"single machine (MinHashDeduper): {local_wall:.1f} s, kept {local.sum():,}", flush=True)

    walls: dict[int, float] = {}
    agreement = 0.0
    for workers in (1, 2):
        result, wall = on_ray(texts, workers, "greedy", args.block_rows)
        walls[workers] = wall
        agreement = float((result.keep == local).mean())
        stages = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
        print(
            f"ray, {workers} worker(s), greedy: {wall:.1f} s ({stages}), kept {result.kept:,}, "
            f"{result.rounds} rounds, {result.verified_pairs:,} pairs verified, "
            f"agreement {agreement:.4%}",
            flush=True,
        )
    if not args.no_components:
        result, wall = on_ray(texts, 2, "components", args.block_rows)
        merged = float((result.keep == local).mean())
        print(
            f"ray, 2 workers, components: {wall:.1f} s, kept {result.kept:,}, "
            f"agreement {merged:.4%} (connected components merge chains)",
            flush=True,
        )
    print(f"scaling ratio (wall 1 worker / wall 2 workers): {walls[1] / walls[2]:.2f}")
    print(f"peak RSS of the driver: {peak_rss_mib():,.0f} MiB")
    print(
        result_line(
            "ray_dedup", "agreement with single-machine MinHashDeduper", agreement, ">=", 0.995
        )
    )
    return 0 if agreement >= 0.995 else 1


if __name__ == "__main__":
    sys.exit(main())
