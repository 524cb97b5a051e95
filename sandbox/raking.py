"""Raking (iterative proportional fitting): agent weights that reproduce target marginals.

``population.match`` gives, per persona attribute, the share each value should have (census
shares of sex, education, ...); a key ``age_band x sex`` names a joint cell, whose values are
written ``"18-34 x man"``. :func:`rake` scales the agents' weights one margin at a time until
every weighted margin equals its target (Deming and Stephan 1940). Agents whose value a margin
does not name (validation makes that impossible for the population a scenario is checked
against) are left alone by that margin.

The weights are computed once at run start and stored with the agents; the forecast's shares,
means and bootstrap intervals use them, and the report shows Kish's effective sample size
``(sum w)^2 / sum w^2``: how many unweighted agents the weighted ones are worth.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

JOINT = " x "
"""Joins attribute names (``age_band x sex``) and their values (``18-34 x man``)."""

TOLERANCE = 1e-4
"""Largest gap between a weighted share and its target at which raking has converged."""

MAX_ITERATIONS = 200


def attribute_value(attributes: Mapping[str, Any] | None, key: str) -> str | None:
    """The value an agent has for a ``match`` key, as text; None when it lacks a part of it.

    Lists read as their items joined by ", " (as segments show them); a joint key's parts
    are joined by :data:`JOINT`.
    """
    parts = []
    for name in key.split(JOINT):
        value = (attributes or {}).get(name.strip())
        if value is None:
            return None
        parts.append(", ".join(map(str, value)) if isinstance(value, list) else str(value))
    return JOINT.join(parts)


@dataclass(frozen=True, slots=True)
class MarginFit:
    """One margin: its target shares, the weighted shares reached and the unweighted ones."""

    key: str
    targets: dict[str, float]
    achieved: dict[str, float]
    unweighted: dict[str, float]

    @property
    def max_deviation(self) -> float:
        return max(abs(self.achieved[v] - t) for v, t in self.targets.items())


@dataclass(frozen=True, slots=True)
class WeightSummary:
    """How weighted agents compare with the targets: what the report shows.

    Attributes:
        n: Agents.
        effective_n: Kish's effective sample size of their weights.
        margins: Targets vs achieved (and unweighted) shares, per ``match`` key.
    """

    n: int
    effective_n: float
    margins: tuple[MarginFit, ...]

    @property
    def max_deviation(self) -> float:
        return max((m.max_deviation for m in self.margins), default=0.0)


@dataclass(frozen=True, slots=True)
class Raking:
    """The weights (mean 1 over the agents) and how well they fit.

    Attributes:
        weights: One weight per agent, in the order given.
        summary: Targets vs achieved shares, and the effective sample size.
        iterations: Passes over all margins.
        converged: Every weighted share is within :data:`TOLERANCE` of its target (over the
            values some agent has).
        empty: ``key=value`` cells with a target above 0 that no agent has.
    """

    weights: np.ndarray
    summary: WeightSummary
    iterations: int
    converged: bool
    empty: tuple[str, ...]

    def warnings(self) -> list[str]:
        """One line per problem a user should know about before trusting the weights."""
        out = [
            f"population.match: no agent has {cell}; the other values' targets are "
            "scaled up to fill its share" for cell in self.empty
        ]  # fmt: skip
        if not self.converged:
            out.append(
                f"population.match: raking did not converge in {self.iterations} passes; "
                f"the largest gap between a weighted share and its target is "
                f"{100 * self.summary.max_deviation:.1f} points"
            )
        return out


def kish_effective_n(weights: np.ndarray) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` (n for equal weights)."""
    w = np.asarray(weights, dtype=float)
    total = float((w * w).sum())
    return float(w.sum()) ** 2 / total if total > 0 else 0.0


def _shares(codes: np.ndarray, weights: np.ndarray, n_values: int) -> np.ndarray:
    known = codes >= 0
    totals = np.bincount(codes[known], weights=weights[known], minlength=n_values)
    whole = totals.sum()
    return totals / whole if whole > 0 else totals


def _codes(attributes: list[Mapping[str, Any] | None], key: str, values: list[str]) -> np.ndarray:
    """Per agent, the index of its ``key`` value in ``values``; -1 when not among them."""
    index = {v: i for i, v in enumerate(values)}
    return np.array([index.get(attribute_value(a, key) or "", -1) for a in attributes], dtype=int)


def summarize(
    attributes: list[Mapping[str, Any] | None],
    weights: np.ndarray,
    targets: Mapping[str, Mapping[str, float]],
) -> WeightSummary:
    """Targets vs the shares the weighted agents reach, and the effective sample size.

    Args:
        attributes: Each agent's persona attributes.
        weights: Each agent's weight.
        targets: Per ``match`` key, the target share of each value.
    """
    weights = np.asarray(weights, dtype=float)
    fits = []
    for key, shares in targets.items():
        values = list(shares)
        codes = _codes(attributes, key, values)
        achieved, unweighted = (
            dict(zip(values, map(float, _shares(codes, w, len(values))), strict=True))
            for w in (weights, np.ones(len(codes)))
        )
        targeted = {v: float(shares[v]) for v in values}
        fits.append(MarginFit(key, targeted, achieved, unweighted))
    return WeightSummary(len(weights), kish_effective_n(weights), tuple(fits))


def rake(
    attributes: list[Mapping[str, Any] | None],
    targets: Mapping[str, Mapping[str, float]],
    max_iterations: int = MAX_ITERATIONS,
) -> Raking:
    """Weights for the agents whose attributes are given, fitted to the target marginals.

    Args:
        attributes: Each agent's persona attributes.
        targets: Per ``match`` key, the target share of each value (summing to about 1).
        max_iterations: Passes over all margins before giving up.

    Returns:
        The weights, scaled to mean 1, and the fit.
    """
    n = len(attributes)
    weights = np.ones(n)
    margins = []  # (key, values, codes per agent (-1: not named), target shares)
    empty = []
    for key, shares in targets.items():
        values = list(shares)
        codes = _codes(attributes, key, values)
        goal = np.array([float(shares[v]) for v in values])
        present = np.bincount(codes[codes >= 0], minlength=len(values)) > 0
        empty += [f"{key}={v}" for v, p, g in zip(values, present, goal, strict=True)
                  if g > 0 and not p]  # fmt: skip
        # A target nobody can meet is shared out over the values that agents have.
        goal = np.where(present, goal, 0.0)
        margins.append((key, values, codes, goal / goal.sum() if goal.sum() > 0 else goal))
    iterations, converged = 0, not margins
    while margins and iterations < max_iterations and not converged:
        iterations += 1
        for _key, values, codes, goal in margins:
            current = _shares(codes, weights, len(values))
            # Scale each value's agents so its share of the (named) weight meets the target.
            with np.errstate(divide="ignore", invalid="ignore"):
                factor = np.where(current > 0, goal / current, 1.0)
            known = codes >= 0
            weights[known] *= factor[codes[known]]
        converged = all(
            np.abs(_shares(codes, weights, len(values)) - goal).max() <= TOLERANCE
            for _key, values, codes, goal in margins
        )
    if weights.sum() > 0:
        weights *= n / weights.sum()
    summary = summarize(attributes, weights, targets)
    return Raking(weights, summary, iterations, converged, tuple(empty))
