"""A pool of OpenAI-compatible endpoints: least-in-flight choice, resting and failover records.

Every request goes to the usable endpoint with the fewest requests in flight (ties rotate). An
endpoint that stops answering (connection refused or reset, timeout, 502/503/504) is rested
with exponential backoff, and the request moves at once to another endpoint: a *failover*,
counted per endpoint and per (from, to) pair. When a rest ends, the endpoint gets a single
probe request at a time until one succeeds (a half-open circuit), so a dead server is not sent
a burst of requests every time its rest runs out.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from personahub.urls import mask_url

REST_BASE_S = 0.5
REST_MAX_S = 30.0


@dataclass(eq=False)
class Endpoint:
    """One base URL, its SDK client and its live state.

    Attributes:
        url: The base URL (its :attr:`label`, password masked, names it everywhere else).
        client: The SDK client for it.
        mode: The structured-output mode this endpoint accepts.
        mode_known: Whether a structured request has succeeded in ``mode`` (or the mode was
            configured): until then structured requests go one at a time (:attr:`learning`),
            so a server that refuses ``json_schema`` refuses it once, not once per request.
        learning: Held by the structured request that learns the mode.
        in_flight: Requests being served now.
        down_until: Monotonic time its rest ends.
        failures: Consecutive failures (0 once a request succeeds).
        calls: Requests it answered.
        errors: Requests that failed on it, whatever the cause.
        failovers: Requests that moved from it to another endpoint.
        rests: Times it was rested.
        label: The URL as usage reports, logs and error messages show it: password masked.
    """

    url: str
    client: Any
    mode: str = "json_schema"
    mode_known: bool = False
    learning: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    in_flight: int = 0
    down_until: float = 0.0
    failures: int = 0
    calls: int = 0
    errors: int = 0
    failovers: int = 0
    rests: int = 0
    mode_changes: list[str] = field(default_factory=list)

    label: str = field(init=False)

    def __post_init__(self) -> None:
        # Computed once: every reply carries it.
        self.label = mask_url(self.url)


class EndpointPool:
    """Chooses endpoints and keeps their failure and failover records.

    Args:
        endpoints: The endpoints, in configuration order.
    """

    def __init__(self, endpoints: Sequence[Endpoint]) -> None:
        self.endpoints = list(endpoints)
        self._rotation = itertools.count()
        self.moves: Counter[tuple[str, str]] = Counter()

    @property
    def failovers(self) -> int:
        """Requests moved from one endpoint to another so far."""
        return sum(self.moves.values())

    def pick(self, exclude: Collection[Endpoint] = ()) -> Endpoint | None:
        """The endpoint for the next request, or None when every endpoint not in ``exclude``
        is resting (with no ``exclude``, some endpoint is always returned)."""
        now = time.monotonic()
        candidates = [e for e in self.endpoints if e not in exclude]
        usable = [
            e for e in candidates if e.down_until <= now and (e.failures == 0 or e.in_flight == 0)
        ]
        if not usable:
            if exclude or not candidates:
                return None
            # All resting: someone has to try, and a single endpoint must always be used.
            usable = candidates
        start = next(self._rotation) % len(usable)
        return min(usable[start:] + usable[:start], key=lambda e: e.in_flight)

    def rest(self, endpoint: Endpoint) -> None:
        """Take ``endpoint`` out of the choice for a while, longer after each failed rest."""
        now = time.monotonic()
        if endpoint.down_until > now:
            # Already resting: the requests in flight when a server dies fail together, and
            # count as one failure, not as many doublings of the rest.
            return
        endpoint.failures += 1
        endpoint.rests += 1
        pause = min(REST_MAX_S, REST_BASE_S * 2 ** min(endpoint.failures, 6))
        endpoint.down_until = now + pause

    def moved(self, source: Endpoint, target: Endpoint) -> None:
        """Record a request moving from ``source`` to ``target``."""
        source.failovers += 1
        self.moves[(source.label, target.label)] += 1

    def usage(self) -> dict[str, Any]:
        """Per-endpoint errors, failovers and rests, and every (from, to) move with its count."""
        return {
            "per_endpoint": {
                e.label: {"errors": e.errors, "failovers": e.failovers, "rests": e.rests}
                for e in self.endpoints
            },
            "failovers": self.failovers,
            "failover_moves": [
                {"from": source, "to": target, "calls": n}
                for (source, target), n in sorted(self.moves.items())
            ],
        }
