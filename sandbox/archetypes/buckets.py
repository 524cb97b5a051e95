"""Archetypes: agents that would get the same prompt, so one request answers for all of them.

An archetype is a combination of the persona attributes the scenario names and of what the
agent has seen: which timeline events reached it, how many neighbours' posts it has heard
(binned) and the stance most of them took. Word of mouth therefore moves agents between
archetypes as it spreads. The combination is packed into one ``int64`` per agent (a mixed-radix
number) and ``np.unique`` groups them: one pass, no Python loop over agents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sandbox.archetypes.population import AgentTable
from sandbox.archetypes.state import PopulationState

NO_STANCE = -1


@dataclass(frozen=True)
class Archetype:
    """One group of agents answering as one.

    Attributes:
        attributes: The persona attribute values it stands for.
        events: Indices of the timeline events its members have seen.
        heard: Posts heard, as the bin's lower edge (e.g. 3 for "3 or more").
        heard_upper: The bin's upper edge (None for the last bin).
        stance: The option most posts heard took (index into the first question's options),
            or -1 when none heard.
        size: Members this step.
    """

    attributes: dict[str, str]
    events: tuple[int, ...]
    heard: int
    heard_upper: int | None
    stance: int
    size: int

    def key(self) -> str:
        """A stable text id (for the run database and the report)."""
        parts = [f"{k}={v}" for k, v in self.attributes.items()]
        parts += [f"events={'+'.join(map(str, self.events)) or '-'}", f"heard>={self.heard}"]
        if self.stance != NO_STANCE:
            parts.append(f"stance={self.stance}")
        return "|".join(parts)


@dataclass(frozen=True)
class Buckets:
    """The archetypes of the active agents of one step.

    Attributes:
        agents: The active agents' ids.
        member_of: For each of ``agents``, the index of its archetype in ``archetypes``.
        archetypes: The non-empty archetypes, in key order.
    """

    agents: np.ndarray
    member_of: np.ndarray
    archetypes: list[Archetype]


def heard_bins(posts: np.ndarray, edges: Sequence[int]) -> np.ndarray:
    """Bin index of each post count; ``edges`` are the bins' lower edges, starting at 0."""
    return np.searchsorted(np.asarray(edges), posts, side="right") - 1


def bucket(
    table: AgentTable,
    attributes: Sequence[str],
    state: PopulationState,
    agents: np.ndarray,
    edges: Sequence[int],
    per_agent: bool = False,
) -> Buckets:
    """Group ``agents`` by archetype (``per_agent``: one archetype per agent)."""
    digits: list[tuple[np.ndarray, int]] = [
        (table.codes[name][agents].astype(np.int64), len(table.labels[name])) for name in attributes
    ]
    heard = state.heard[agents]
    posts = heard.sum(axis=1, dtype=np.int64)
    stance = np.where(posts > 0, heard.argmax(axis=1), NO_STANCE)
    digits.append((heard_bins(posts, edges).astype(np.int64), len(edges)))
    digits.append((stance.astype(np.int64) + 1, heard.shape[1] + 1))
    key = state.events[agents].astype(np.int64)  # the events bitmask is the top digit
    for column, radix in digits:
        key = key * radix + column
    if per_agent:  # every agent its own archetype: its key, then its id
        key = key * len(agents) + np.arange(len(agents), dtype=np.int64)
    unique, member_of = np.unique(key, return_inverse=True)
    sizes = np.bincount(member_of, minlength=len(unique))
    archetypes = []
    for packed, size in zip(unique.tolist(), sizes.tolist(), strict=True):
        if per_agent:
            packed //= len(agents)
        found: list[int] = []
        for _, radix in reversed(digits):
            packed, digit = divmod(packed, radix)
            found.append(digit)
        found.reverse()
        *codes, heard_bin, stance_digit = found
        upper = edges[heard_bin + 1] if heard_bin + 1 < len(edges) else None
        archetypes.append(
            Archetype(
                attributes={n: table.labels[n][c] for n, c in zip(attributes, codes, strict=True)},
                events=tuple(e for e in range(32) if packed >> e & 1),
                heard=int(edges[heard_bin]),
                heard_upper=upper,
                stance=stance_digit - 1,
                size=size,
            )
        )
    return Buckets(agents, member_of.astype(np.int32), archetypes)
