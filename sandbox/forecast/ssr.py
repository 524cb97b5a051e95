"""Semantic-similarity rating (SSR; Maier et al. 2025, arXiv 2510.08338).

SSR maps a free-text reaction to a probability distribution over a Likert scale instead of asking
for a number: the reaction and one anchor statement per scale point are embedded, the reaction's
cosine similarities to the anchors are shifted to a zero minimum and normalised into a pmf. As in
the paper, the pmf is averaged over several anchor sets (:mod:`sandbox.forecast.anchors`), so no
one set's wording decides the rating; the mean of those pmfs over agents is set beside the
distribution of their direct answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from sandbox.forecast.anchors import anchor_sets
from sandbox.forecast.scenario import LikertQuestion
from sandbox.rundb import InteractionRow


class Encoder(Protocol):
    """Anything with ``encode(texts) -> L2-normalised (n, dim) array`` (the embedder)."""

    def encode(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class SSRComparison:
    """Semantic-similarity rating of the reactions beside the direct answers (final step).

    Attributes:
        anchor_sets: The anchor sets averaged over: statements, one per scale point, lowest
            first.
        temperature: The SSR temperature used.
        n: Agents with both a reaction and a direct answer.
        ssr: Mean SSR pmf over those agents, per scale point.
        direct: Share of their direct answers per scale point.
        ssr_mean: Mean scale point under ``ssr`` (None when ``n`` is 0).
        direct_mean: Mean scale point under ``direct`` (None when ``n`` is 0).
        mean_abs_diff: Mean absolute difference of the two pmfs (None when ``n`` is 0).
        ks: Largest gap between their CDFs (None when ``n`` is 0).
    """

    anchor_sets: tuple[tuple[str, ...], ...]
    temperature: float
    n: int
    ssr: tuple[float, ...]
    direct: tuple[float, ...]
    ssr_mean: float | None
    direct_mean: float | None
    mean_abs_diff: float | None
    ks: float | None

    @property
    def anchors(self) -> tuple[str, ...]:
        """The first anchor set."""
        return self.anchor_sets[0]

    @property
    def by_point(self) -> list[tuple[str, ...]]:
        """Per scale point, its statement in each anchor set."""
        return list(zip(*self.anchor_sets, strict=True))


def rate(reactions: np.ndarray, sets: list[np.ndarray], temperature: float = 1.0) -> np.ndarray:
    """SSR pmfs of embedded reactions, averaged over anchor sets.

    Args:
        reactions: ``(n, dim)`` L2-normalised reaction vectors.
        sets: Per anchor set, its ``(k, dim)`` L2-normalised statement vectors.
        temperature: SSR temperature (1 = plain normalised similarities).

    Returns:
        ``(n, k)`` array whose rows sum to 1.
    """
    pmfs = [ssr_pmf(reactions @ anchors.T, temperature) for anchors in sets]
    mean: np.ndarray = np.mean(pmfs, axis=0)
    return mean


def embed(encoder: Encoder, texts: list[str]) -> np.ndarray:
    """``encoder`` vectors of ``texts`` in one batch, each distinct text encoded once (agents
    often repeat themselves, and anchors recur)."""
    unique = list(dict.fromkeys(texts))
    position = {t: i for i, t in enumerate(unique)}
    vectors: np.ndarray = encoder.encode(unique)[[position[t] for t in texts]]
    return vectors


def ssr_pmf(similarities: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Turn cosine similarities to the k anchors into pmfs over the scale.

    Subtract each row's minimum and normalise. The temperature is applied as an exponent
    ``p ** (1 / T)`` before renormalising, as in the paper; dividing by T before normalising
    would cancel out. Rows whose similarities are all equal become uniform.

    Args:
        similarities: ``(n, k)`` cosine similarities of n reactions to the k anchors.
        temperature: SSR temperature (1 = plain normalised similarities).

    Returns:
        ``(n, k)`` array whose rows sum to 1.
    """
    sims = np.atleast_2d(np.asarray(similarities, dtype=float))
    shifted = sims - sims.min(axis=1, keepdims=True)
    if temperature != 1.0:
        shifted = shifted ** (1.0 / temperature)
    totals = shifted.sum(axis=1, keepdims=True)
    uniform = np.full_like(shifted, 1.0 / max(1, sims.shape[1]))
    with np.errstate(invalid="ignore", divide="ignore"):
        pmf: np.ndarray = np.where(totals > 0, shifted / totals, uniform)
    return pmf


def compare_pmfs(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean absolute difference and KS distance (largest CDF gap) of two pmfs on one scale.

    Args:
        a: A pmf over k scale points.
        b: Another pmf over the same k points.

    Returns:
        ``(mean_abs_diff, ks)``.
    """
    return float(np.abs(a - b).mean()), float(np.abs(np.cumsum(a) - np.cumsum(b)).max())


def ssr_comparisons(
    questions: list[LikertQuestion],
    rows: list[InteractionRow],
    final_idx: np.ndarray,
    encoder: Encoder | None,
    temperature: float,
) -> dict[str, SSRComparison]:
    """Rate the agents' final reactions by SSR for each likert question (one encode call).

    Args:
        questions: The likert questions to rate.
        rows: The run's interactions.
        final_idx: Per agent, the index into ``rows`` of its latest good answer, or -1.
        encoder: Sentence encoder; the packaged embedder when None (loaded only if there are
            questions and reactions).
        temperature: SSR temperature (1 = plain normalised similarities).

    Returns:
        The comparison per question id; empty when there are no questions or no reactions.
    """
    if not questions:
        return {}
    reactions: list[str] = []
    answers: dict[str, list[float]] = {q.id: [] for q in questions}
    for k in final_idx:
        if k < 0:
            continue
        parsed = rows[k].parsed or {}
        reaction = str(parsed.get("reaction") or rows[k].reaction or "").strip()
        if not reaction:
            continue
        reactions.append(reaction)
        for q in questions:
            value = parsed.get(q.id)
            answers[q.id].append(float(value) if isinstance(value, int | float) else np.nan)
    if not reactions:
        return {}
    if encoder is None:
        from personahub.embeddings import get_embedder

        encoder = get_embedder()
    sets_of = [anchor_sets(q) for q in questions]
    statements = [a for sets in sets_of for one_set in sets for a in one_set]
    vectors = embed(encoder, reactions + statements)
    react_vecs, offset = vectors[: len(reactions)], len(reactions)
    by_id = {}
    for q, sets in zip(questions, sets_of, strict=True):
        scale = q.scale
        anchor_vecs = [
            vectors[offset + j * scale : offset + (j + 1) * scale] for j in range(len(sets))
        ]
        offset += scale * len(sets)
        direct_values = np.asarray(answers[q.id])
        keep = ~np.isnan(direct_values)
        any_kept = bool(keep.any())
        pmf = (
            rate(react_vecs[keep], anchor_vecs, temperature).mean(axis=0)
            if any_kept
            else np.zeros(scale)
        )
        counts = np.bincount(direct_values[keep].astype(int), minlength=scale + 1)[1 : scale + 1]
        direct = counts / max(1, int(keep.sum()))
        points = np.arange(1, scale + 1)
        mad, ks = compare_pmfs(pmf, direct) if any_kept else (None, None)
        by_id[q.id] = SSRComparison(
            anchor_sets=tuple(map(tuple, sets)),
            temperature=temperature,
            n=int(keep.sum()),
            ssr=tuple(map(float, pmf)),
            direct=tuple(map(float, direct)),
            ssr_mean=float(pmf @ points) if any_kept else None,
            direct_mean=float(direct @ points) if any_kept else None,
            mean_abs_diff=mad,
            ks=ks,
        )
    return by_id
