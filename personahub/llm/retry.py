"""Retries with exponential backoff and full jitter, honouring ``Retry-After``.

Backends raise :class:`TransportError`; only transient kinds (timeouts, connection errors,
429, 5xx) are retried. Everything else fails at once with its cause.

We retry here, in one place, and the openai SDK's own retries are off (``max_retries=0`` in
the ``openai`` backend): here a retry waits with full jitter, honours ``Retry-After`` up to a
cap, is metered, and follows the backend's failover across endpoints. SDK retries would
multiply the attempts (SDK retries times ours) and hide them from the meter and the budget.
:class:`RetryLayer` is this concern as a gateway layer.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from personahub.llm.gateway import Gateway, Layer
from personahub.llm.types import TRANSIENT_KINDS, ErrorKind, LLMError, LLMRequest, LLMResult, T

R = TypeVar("R")


class TransportError(Exception):
    """A failed backend call, classified.

    Attributes:
        kind: The error class.
        message: Human-readable cause (must already be free of secrets).
        retry_after: Seconds the server asked us to wait, if it said so.
        attempts: Attempts spent when it was finally raised (set by the retries).
        endpoint: The endpoint label it happened at ("" when the backend has none), for the
            per-endpoint retry counts.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        retry_after: float | None = None,
        attempts: int = 1,
        endpoint: str = "",
    ):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after
        self.attempts = attempts
        self.endpoint = endpoint

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
                exc.attempts = attempt + 1
                raise
            attempt += 1
            wait = policy.delay(attempt, exc.retry_after, rng)
            if on_retry:
                on_retry(exc, wait)
            await asyncio.sleep(wait)


class RetryLayer(Layer):
    """Retries the calls of the gateway below on transient transport errors.

    A success reports its retries; the last error becomes an error value with the attempts
    spent. After retries, a call's latency is that of all its attempts and waits.

    Args:
        inner: The gateway below (raises TransportError).
        policy: How often and how long to wait.
        on_retry: Called before each wait (logging), with the error and the wait.
    """

    def __init__(
        self,
        inner: Gateway,
        policy: RetryPolicy,
        on_retry: Callable[[TransportError, float], None] | None = None,
    ) -> None:
        super().__init__(inner)
        self.policy = policy
        self.on_retry = on_retry
        self._rng = random.Random()

    async def complete(self, request: LLMRequest[T]) -> LLMResult[T]:
        started = time.perf_counter()
        try:
            result, retries = await call_with_retries(
                lambda _attempt: self.inner.complete(request),
                self.policy,
                self._rng,
                on_retry=self.on_retry,
            )
        except TransportError as exc:
            return LLMResult(
                error=LLMError(exc.kind, exc.message, exc.attempts),
                retries=exc.attempts - 1,
                latency_s=time.perf_counter() - started,
                model=self.model,
                messages=tuple(request.messages),
            )
        if not retries:
            return result
        return replace(result, retries=retries, latency_s=time.perf_counter() - started)
