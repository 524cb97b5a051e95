"""How far predicted answers are from real ones: distribution scores and per-respondent scores.

Distributions are numpy vectors over a question's scored options, in the spec's order. The
distribution scores compare a method's predicted share of each option in a group (the weighted
mean of its per-respondent distributions) with the real shares of the same respondents:

* SimBench score (arXiv 2510.17516): ``100 * (1 - TV(pred, real) / TV(uniform, real))``, with
  TV the total variation distance: 0 = no better than a uniform guess, 100 = the real
  distribution, negative = worse than uniform;
* ordinal questions: ``1 - W1 / (k - 1)`` (W1: earth mover's distance between the two
  distributions over option positions 0..k-1; 1 = identical, 0 = all mass at opposite ends) and
  KS, the largest gap between the cumulative shares (needs an order, so ordinal only);
* dispersion: entropy of the predicted distribution over the real one's (< 1: the predictions
  are more uniform-minded, i.e. less spread than people; the usual failure is far below 1).

With individual data, per-respondent accuracy (the most likely option is the real answer;
ties share the credit) and log-loss (probabilities clipped at :data:`LOG_LOSS_FLOOR`).
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel

LOG_LOSS_FLOOR = 1e-4
"""Smallest probability log-loss takes: a one-hot answer that is wrong costs -ln(1e-4) = 9.2
instead of infinity."""


class Scores(BaseModel):
    """The scores of one method on one question and group (None where undefined)."""

    n: int
    simbench: float | None = None
    w1: float | None = None
    ks: float | None = None
    dispersion: float | None = None
    accuracy: float | None = None
    log_loss: float | None = None


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    return float(0.5 * np.abs(p - q).sum())


def simbench(pred: np.ndarray, real: np.ndarray) -> float | None:
    """SimBench's normalised score; None when the real distribution is itself uniform."""
    uniform = np.full_like(real, 1.0 / len(real))
    base = total_variation(uniform, real)
    if base == 0:
        return None
    return 100.0 * (1.0 - total_variation(pred, real) / base)


def w1_score(pred: np.ndarray, real: np.ndarray) -> float:
    """``1 - W1/(k-1)`` over option positions 0..k-1."""
    w1 = float(np.abs(np.cumsum(pred) - np.cumsum(real)).sum())
    return 1.0 - w1 / (len(real) - 1)


def ks(pred: np.ndarray, real: np.ndarray) -> float:
    """Kolmogorov-Smirnov distance between two distributions over ordered options."""
    return float(np.abs(np.cumsum(pred) - np.cumsum(real)).max())


def entropy(p: np.ndarray) -> float:
    mass = p[p > 0]
    return abs(float((mass * np.log(mass)).sum()))  # abs: a one-hot gives 0.0, not -0.0


def dispersion(pred: np.ndarray, real: np.ndarray) -> float | None:
    """Entropy of ``pred`` over entropy of ``real``; None when everyone gave one answer."""
    base = entropy(real)
    return entropy(pred) / base if base > 0 else None


def accuracy(probs: np.ndarray, actual: np.ndarray, weights: np.ndarray) -> float:
    """Weighted share of respondents whose most likely option is their answer; an answer
    among t tied top options counts 1/t (so a uniform guess scores 1/k)."""
    top = probs.max(axis=1, keepdims=True)
    tied = np.isclose(probs, top)
    credit = tied[np.arange(len(actual)), actual] / tied.sum(axis=1)
    return float(np.average(credit, weights=weights))


def log_loss(probs: np.ndarray, actual: np.ndarray, weights: np.ndarray) -> float:
    """Weighted mean of ``-ln p(real answer)``."""
    picked = np.clip(probs[np.arange(len(actual)), actual], LOG_LOSS_FLOOR, 1.0)
    return float(np.average(-np.log(picked), weights=weights))


def score(
    probs: np.ndarray,
    weights: np.ndarray,
    ordinal: bool,
    actual: np.ndarray | None = None,
    real: np.ndarray | None = None,
) -> Scores:
    """All scores of one method on one question and group.

    Args:
        probs: Per-respondent predicted distributions (respondents x options); rows sum to 1.
        weights: Per-respondent weights.
        ordinal: Whether the options are ordered.
        actual: Per-respondent real answers as option positions (individual data).
        real: The real distribution (count data, where there is no ``actual``).
    """
    if actual is not None:
        counts = np.bincount(actual, weights=weights, minlength=probs.shape[1])
        real = counts / counts.sum()
    if real is None:
        raise ValueError("score needs the real answers or the real distribution")
    pred = np.average(probs, axis=0, weights=weights)
    return Scores(
        n=len(probs),
        simbench=_rounded(simbench(pred, real)),
        w1=_rounded(w1_score(pred, real)) if ordinal else None,
        ks=_rounded(ks(pred, real)) if ordinal else None,
        dispersion=_rounded(dispersion(pred, real)),
        accuracy=_rounded(accuracy(probs, actual, weights)) if actual is not None else None,
        log_loss=_rounded(log_loss(probs, actual, weights)) if actual is not None else None,
    )


def _rounded(value: float | None) -> float | None:
    # + 0.0 turns -0.0 (a uniform guess a rounding error below 0) into 0.0
    return None if value is None or math.isnan(value) else round(value, 4) + 0.0
