"""Semantic-similarity rating (SSR; Maier et al. 2025, arXiv 2510.08338).

SSR maps a free-text reaction to a probability distribution over a Likert scale instead of asking
for a number: the reaction and one anchor statement per scale point are embedded, the reaction's
cosine similarities to the anchors are shifted to a zero minimum and normalised into a pmf, and
the mean of those pmfs over agents is set beside the distribution of their direct answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from sandbox.forecast.scenario import LikertQuestion
from sandbox.rundb import InteractionRow

_INTENSIFIERS = {"strongly", "very", "extremely", "completely", "totally", "fully", "highly"}
_VERBS = {"agree", "disagree", "oppose", "support", "like", "dislike", "approve", "disapprove",
          "accept", "reject", "trust", "distrust", "want", "love", "hate", "recommend"}  # fmt: skip
_GRADES = ("slightly", "somewhat", "moderately", "fairly")  # weakest first


class Encoder(Protocol):
    """Anything with ``encode(texts) -> L2-normalised (n, dim) array`` (the embedder)."""

    def encode(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class SSRComparison:
    """Semantic-similarity rating of the reactions beside the direct answers (final step).

    Attributes:
        anchors: The anchor statements, one per scale point, lowest first.
        temperature: The SSR temperature used.
        n: Agents with both a reaction and a direct answer.
        ssr: Mean SSR pmf over those agents, per scale point.
        direct: Share of their direct answers per scale point.
        ssr_mean: Mean scale point under ``ssr`` (None when ``n`` is 0).
        direct_mean: Mean scale point under ``direct`` (None when ``n`` is 0).
        mean_abs_diff: Mean absolute difference of the two pmfs (None when ``n`` is 0).
        ks: Largest gap between their CDFs (None when ``n`` is 0).
    """

    anchors: tuple[str, ...]
    temperature: float
    n: int
    ssr: tuple[float, ...]
    direct: tuple[float, ...]
    ssr_mean: float | None
    direct_mean: float | None
    mean_abs_diff: float | None
    ks: float | None


def generic_anchors(question: LikertQuestion) -> list[str]:
    """First-person anchor statements, one per scale point, from ``low`` and ``high``.

    The extremes use the labels as written; inner points drop a leading intensifier ("strongly")
    and add a weaker grade, and an odd scale gets a neutral midpoint.

    Args:
        question: The likert question; its ``scale``, ``low`` and ``high`` are used.

    Returns:
        ``question.scale`` statements, lowest scale point first.
    """
    k = question.scale

    def core(label: str) -> str:
        words = label.split()
        return (
            " ".join(words[1:]) if len(words) > 1 and words[0].lower() in _INTENSIFIERS else label
        )

    def say(phrase: str) -> str:
        is_verb = any(w.lower() in _VERBS for w in phrase.split()[:3])
        return f"I {phrase}." if is_verb else f"For me it is {phrase}."

    inner = (k - 2) // 2  # points strictly between an extreme and the middle, per side

    def side(label: str) -> list[str]:
        # From the extreme towards the middle: the bare label (if the extreme had an
        # intensifier to drop), then ever weaker grades.
        bare = [""] if core(label) != label else []
        grades = [*bare, *reversed(_GRADES[: max(0, inner - len(bare))])][:inner]
        return [say(label)] + [say(f"{g} {core(label)}".strip()) for g in grades]

    middle = [say(f"neither {core(question.low)} nor {core(question.high)}")] if k % 2 else []
    return side(question.low) + middle + side(question.high)[::-1]


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
    anchor_sets = [list(q.anchors or generic_anchors(q)) for q in questions]
    texts = reactions + [a for anchors in anchor_sets for a in anchors]
    # One batch, each distinct text once: agents often repeat themselves, and anchors recur.
    unique = list(dict.fromkeys(texts))
    position = {t: i for i, t in enumerate(unique)}
    vectors = encoder.encode(unique)[[position[t] for t in texts]]
    react_vecs, offset = vectors[: len(reactions)], len(reactions)
    by_id = {}
    for q, anchors in zip(questions, anchor_sets, strict=True):
        scale = len(anchors)
        sims = react_vecs @ vectors[offset : offset + scale].T
        offset += scale
        direct_values = np.asarray(answers[q.id])
        keep = ~np.isnan(direct_values)
        any_kept = bool(keep.any())
        pmf = ssr_pmf(sims[keep], temperature).mean(axis=0) if any_kept else np.zeros(scale)
        counts = np.bincount(direct_values[keep].astype(int), minlength=scale + 1)[1 : scale + 1]
        direct = counts / max(1, int(keep.sum()))
        points = np.arange(1, scale + 1)
        mad, ks = compare_pmfs(pmf, direct) if any_kept else (None, None)
        by_id[q.id] = SSRComparison(
            anchors=tuple(anchors),
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
