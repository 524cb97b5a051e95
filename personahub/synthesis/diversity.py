"""Diversity of a synthesis output, beside the diversity of the personas that produced it.

The paper's point is that different personas spread the outputs: personas at similarity 0.9
still gave outputs mostly at 0.6-0.75. These metrics let a user check that on their own file:

- distinct-1 and distinct-2: unique word unigrams (bigrams) over all unigrams (bigrams);
- mean pairwise cosine similarity of MiniLM embeddings over sampled pairs, with quartiles;
- the near-duplicate rate: the share MinHash (Jaccard 0.9) would drop.

Personas are counted once each (a persona used for several samples is one persona).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from personahub.dedup.minhash import MinHashDeduper, tokenize

Embed = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True, slots=True)
class Diversity:
    """Metrics of one set of texts (similarity fields are None when not computed)."""

    count: int
    distinct_1: float
    distinct_2: float
    duplicate_rate: float
    mean_similarity: float | None = None
    similarity_p25: float | None = None
    similarity_p50: float | None = None
    similarity_p75: float | None = None
    pairs: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Unique n-grams over all n-grams, across ``texts`` (0 when there are none)."""
    total = 0
    unique: set[tuple[str, ...]] = set()
    for text in texts:
        words = text.lower().split()
        grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        total += len(grams)
        unique.update(grams)
    return len(unique) / total if total else 0.0


def duplicate_rate(texts: Sequence[str], threshold: float = 0.9) -> float:
    """The share of texts MinHash dedup would drop as near-duplicates of an earlier one."""
    usable = [t for t in texts if tokenize(t)]
    if not usable:
        return 0.0
    kept = MinHashDeduper(threshold=threshold).add_batch(list(range(len(usable))), usable)
    return 1.0 - sum(kept) / len(usable)


def pairwise_similarity(
    texts: Sequence[str], embed: Embed, max_pairs: int, seed: int = 0
) -> tuple[np.ndarray, int]:
    """Cosine similarities of up to ``max_pairs`` random distinct pairs (all when fewer)."""
    n = len(texts)
    if n < 2:
        return np.empty(0), 0
    rng = random.Random(seed)
    all_pairs = n * (n - 1) // 2
    if all_pairs <= max_pairs:
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    else:
        chosen: set[tuple[int, int]] = set()
        while len(chosen) < max_pairs:
            i, j = rng.sample(range(n), 2)
            chosen.add((min(i, j), max(i, j)))
        pairs = sorted(chosen)
    needed = sorted({i for pair in pairs for i in pair})
    where = {index: row for row, index in enumerate(needed)}
    vectors = np.asarray(embed([texts[i] for i in needed]), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)
    left = vectors[[where[i] for i, _ in pairs]]
    right = vectors[[where[j] for _, j in pairs]]
    return np.einsum("ij,ij->i", left, right), len(pairs)


def measure(
    texts: Sequence[str], embed: Embed | None = None, max_pairs: int = 2000, seed: int = 0
) -> Diversity:
    """All metrics of ``texts``; similarity only when ``embed`` is given."""
    base = Diversity(
        count=len(texts),
        distinct_1=distinct_n(texts, 1),
        distinct_2=distinct_n(texts, 2),
        duplicate_rate=duplicate_rate(texts),
    )
    if embed is None:
        return base
    sims, pairs = pairwise_similarity(texts, embed, max_pairs, seed)
    if not pairs:
        return base
    p25, p50, p75 = (float(x) for x in np.percentile(sims, [25, 50, 75]))
    return replace(
        base,
        mean_similarity=float(sims.mean()),
        similarity_p25=p25,
        similarity_p50=p50,
        similarity_p75=p75,
        pairs=pairs,
    )


def measure_file_rows(
    rows: Sequence[dict[str, Any]], embed: Embed | None = None, max_pairs: int = 2000, seed: int = 0
) -> dict[str, Diversity]:
    """Metrics of the outputs (``text``) and of the distinct personas of synthesis rows."""
    outputs = [str(r.get("text", "")) for r in rows]
    personas = list(dict.fromkeys(str(r.get("persona", "")) for r in rows if r.get("persona")))
    return {
        "outputs": measure(outputs, embed, max_pairs, seed),
        "personas": measure(personas, embed, max_pairs, seed),
    }
