"""Interval statistics: point estimates with 95% intervals over agents.

Shares (means of 0/1 answers) get Wilson score intervals (:func:`share_estimates`): a percentile
bootstrap of 3 agents out of 3 saying "yes" gives the interval 100-100%, as if the share were
known; Wilson's gives 44-100%, and behaves at any n. Means get percentile bootstrap intervals:
one seeded ``(n_boot, n_agents)`` matrix of resampled agent indices is turned into per-resample
weights (:func:`resample_weights`), so every share and mean over every row of a value matrix comes
out of a single matrix product (:func:`bootstrap_means`) instead of a loop over resamples.

Agents may carry design weights (raking, :mod:`sandbox.raking`): the point estimate is then the
weighted mean, and each resample weighs the agents it drew by their design weight (a weighted
bootstrap), so the interval widens as the weights grow unequal.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

SMALL_N = 30
"""Below this many answers an estimate is flagged "n too small to conclude": a 95% interval of
a share is then wider than +-15 points around one half, and one agent moves it by 3 or more."""

Z_95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class Estimate:
    """A point estimate and its 95% bootstrap interval; ``value`` is None when nobody answered."""

    value: float | None
    low: float | None
    high: float | None
    n: int

    def text(self, percent: bool = False) -> str:
        """The point estimate as the report prints it (``41.7%`` or ``3.25``)."""
        return _fmt(self.value, percent)

    @property
    def note(self) -> str:
        """ "n too small to conclude" for an estimate from fewer than :data:`SMALL_N`
        answers (none: "")."""
        return "n too small to conclude" if 0 < self.n < SMALL_N else ""

    def interval(self, percent: bool = False) -> str:
        """The interval as printed (``25.0–58.3%``), or "" when there is none."""
        if self.low is None or self.high is None:
            return ""
        if percent:
            return f"{100 * self.low:.1f}–{100 * self.high:.1f}%"
        return f"{self.low:.2f}–{self.high:.2f}"


def _fmt(value: float | None, percent: bool) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:.1f}%" if percent else f"{value:.2f}"


def resample_weights(rng: np.random.Generator, n_boot: int, n: int) -> np.ndarray:
    """How often each of ``n`` agents is drawn in each of ``n_boot`` resamples.

    Built from one ``(n_boot, n)`` index matrix; offsetting each row's indices lets a single
    ``bincount`` count all rows at once.

    Args:
        rng: The seeded generator to draw from.
        n_boot: Number of bootstrap resamples.
        n: Number of agents.

    Returns:
        ``(n_boot, n)`` float array of draw counts; each row sums to ``n``.
    """
    if n == 0:
        return np.zeros((n_boot, 0))
    idx = rng.integers(0, n, size=(n_boot, n))
    flat = (idx + np.arange(n_boot)[:, None] * n).ravel()
    return np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(float)


def bootstrap_means(
    values: np.ndarray, weights: np.ndarray, design: np.ndarray | None = None
) -> list[Estimate]:
    """Mean of each row of ``values`` (NaN = no answer) with a 95% percentile interval.

    Args:
        values: ``(m, n)``: m quantities over n agents; shares are means of 0/1 indicators.
        weights: ``(n_boot, n)`` from :func:`resample_weights`.
        design: ``(n,)`` the agents' own weights (raking); equal weights when None.

    Returns:
        One :class:`Estimate` per row; rows nobody answered give ``Estimate(None, None, None, 0)``.
    """
    values = np.atleast_2d(np.asarray(values, dtype=float))
    valid = ~np.isnan(values)
    x = np.where(valid, values, 0.0)
    counts = valid.sum(axis=1)
    w = np.ones(values.shape[1]) if design is None else np.asarray(design, dtype=float)
    drawn = weights * w
    with np.errstate(invalid="ignore", divide="ignore"):
        point = (x @ w) / (valid @ w)
        boots = (drawn @ x.T) / (drawn @ valid.T.astype(float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: nobody answered
        low, high = np.nanpercentile(boots, [2.5, 97.5], axis=0) if len(weights) else (point,) * 2
    out = []
    for p, lo, hi, n in zip(point, low, high, counts, strict=True):
        if n == 0:
            out.append(Estimate(None, None, None, 0))
        else:
            # A degenerate resample set, or float rounding, must not put the point outside.
            lo, hi = (p, p) if np.isnan(lo) else (min(lo, p), max(hi, p))
            out.append(Estimate(float(p), float(lo), float(hi), int(n)))
    return out


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, qs: list[float]) -> np.ndarray:
    """Quantiles (``qs`` in 0..1) of ``values`` whose items carry ``weights``.

    The sorted values sit at the share of weight before them (of the weight of all but the
    last), and quantiles interpolate linearly between them: with equal weights these are
    NumPy's default (linear) percentiles.
    """
    order = np.argsort(values, kind="stable")
    x, w = np.asarray(values, dtype=float)[order], np.asarray(weights, dtype=float)[order]
    before = np.concatenate(([0.0], np.cumsum(w)[:-1]))
    span = before[-1] if len(x) > 1 and before[-1] > 0 else 1.0
    return np.interp(qs, before / span, x)


def wilson_interval(successes: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """95% Wilson score intervals for ``successes`` out of ``n`` (arrays; ``n`` > 0)."""
    p = successes / n
    z2 = Z_95**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z_95 * np.sqrt(p * (1 - p) / n + z2 / (4 * n**2)) / (1 + z2 / n)
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def share_estimates(indicators: np.ndarray) -> list[Estimate]:
    """The share of each row of ``indicators`` (1 = yes, 0 = no, NaN = no answer) with its
    95% Wilson score interval.

    Args:
        indicators: ``(m, n)``: m shares over n agents.

    Returns:
        One :class:`Estimate` per row; rows nobody answered give ``Estimate(None, None, None, 0)``.
    """
    values = np.atleast_2d(np.asarray(indicators, dtype=float))
    counts = (~np.isnan(values)).sum(axis=1)
    successes = np.nansum(values, axis=1)
    safe = np.maximum(counts, 1)
    low, high = wilson_interval(successes, safe)
    out = []
    for yes, lo, hi, n in zip(successes, low, high, counts, strict=True):
        if n == 0:
            out.append(Estimate(None, None, None, 0))
        else:
            p = float(yes / n)
            # Float rounding must not put the point outside its interval.
            out.append(Estimate(p, min(float(lo), p), max(float(hi), p), int(n)))
    return out
