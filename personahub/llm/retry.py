"""Retries with exponential backoff and full jitter, honouring ``Retry-After``.

Backends raise :class:`TransportError`; only transient kinds (timeouts, connection errors,
429, 5xx) are retried. Everything else fails at once with its cause.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from personahub.llm.types import TRANSIENT_KINDS, ErrorKind

R = TypeVar("R")


class TransportError(Exception):
    """A failed backend call, classified.

    Attributes:
        kind: The error class.
        message: Human-readable cause (must already be free of secrets).
        retry_after: Seconds the server asked us to wait, if it said so.
    """

    def __init__(self, kind: ErrorKind, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        return self.kind in TRANSIENT_KINDS


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` (or ``retry-after-ms``) header value: a number or a date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (now if now is not None else time.time()))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to wait.

    Attributes:
        max_retries: Retries after the first attempt.
        base_s: First backoff ceiling; doubles per attempt.
        max_s: Cap for any single wait, ``Retry-After`` included.
    """

    max_retries: int = 4
    base_s: float = 0.5
    max_s: float = 30.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Wait before retry number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(self.max_s, retry_after)
        ceiling = min(self.max_s, self.base_s * (2 ** (attempt - 1)))
        return rng.uniform(0, ceiling)


async def call_with_retries(
    attempt_fn: Callable[[int], Awaitable[R]],
    policy: RetryPolicy,
    rng: random.Random | None = None,
    on_retry: Callable[[TransportError, float], None] | None = None,
) -> tuple[R, int]:
    """Run ``attempt_fn(attempt)`` until it succeeds or a non-transient error occurs.

    Returns:
        The result and the number of retries it took.

    Raises:
        TransportError: The last error, with ``attempts`` retries spent.
    """
    rng = rng or random.Random()
    attempt = 0
    while True:
        try:
            return await attempt_fn(attempt), attempt
        except TransportError as exc:
            if not exc.transient or attempt >= policy.max_retries:
                exc.attempts = attempt + 1  # type: ignore[attr-defined]
                raise
            attempt += 1
            wait = policy.delay(attempt, exc.retry_after, rng)
            if on_retry:
                on_retry(exc, wait)
            await asyncio.sleep(wait)
