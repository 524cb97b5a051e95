"""Each agent's own seeded draw from its archetype's answer distribution.

An agent's uniform number for (run seed, step, question) comes from a counter-based generator
(SplitMix64 of the agent id and those counters), so it is the agent's own stream: the same
whatever other agents exist, in whatever order they are processed, on resume and on replay;
and a million draws are a few vectorised integer operations.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _splitmix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def uniforms(agents: np.ndarray, seed: int, step: int, stream: int) -> np.ndarray:
    """A uniform number in [0, 1) per agent for (``seed``, ``step``, ``stream``)."""
    counter = np.uint64((seed * 1_000_003 + step) * 65_537 + stream)
    mixed = _splitmix(_splitmix(agents.astype(np.uint64) ^ _splitmix(np.array([counter]))))
    return (mixed >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def draw(probs: np.ndarray, member_of: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Option codes: agent ``i`` draws from row ``member_of[i]`` of ``probs`` (archetypes ×
    options, rows summing to 1) with its uniform ``u[i]``."""
    cdf = np.cumsum(probs, axis=1)
    cdf[:, -1] = 1.0  # rounding must not leave a sliver above the last option
    return (u[:, None] >= cdf[member_of]).sum(axis=1).astype(np.int8)
