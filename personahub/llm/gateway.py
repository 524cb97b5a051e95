"""The ``Gateway`` protocol and the base of its layers.

A gateway answers :class:`~personahub.llm.types.LLMRequest` values with
:class:`~personahub.llm.types.LLMResult` values. :class:`~personahub.llm.client.LLMClient` is
one, assembled from layers that each add one concern to the gateway they wrap (cache, budget,
retries, re-asking, metering) around an adapter of a backend; the Ray engine's
:class:`~personahub.distributed.ray_client.RayBatchClient` is another. Code that only sends
requests takes a ``Gateway``, so either serves it.

The public gateways' ``complete`` never raises. Inside the stack, below the retry layer, a
layer may raise :class:`~personahub.llm.retry.TransportError`: that is how a failed call
reaches the retry layer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from personahub.llm.backends.base import Capabilities
from personahub.llm.types import ErrorKind, LLMError, LLMRequest, LLMResult, T

log = logging.getLogger("personahub.llm")

OnResult = Callable[[int, LLMResult[T]], None]
"""Called as each request of a batch finishes, with its index and result."""


class Gateway(Protocol):
    """What callers of the LLM gateway rely on."""

    @property
    def model(self) -> str:
        """The model that answers."""
        ...

    @property
    def capabilities(self) -> Capabilities:
        """The backend's optional abilities (warm-up, structured modes, endpoint usage)."""
        ...

    async def complete(self, request: LLMRequest[T]) -> LLMResult[T]:
        """Answer one request; a failure comes back as an error value."""
        ...

    async def batch(
        self,
        requests: Sequence[LLMRequest[T]],
        concurrency: int | None = None,
        on_result: OnResult[T] | None = None,
    ) -> list[LLMResult[T]]:
        """Answer many requests concurrently; results in input order."""
        ...

    def usage(self) -> dict[str, Any]:
        """Metered usage so far (calls, cache hits, tokens, retries, errors, ...)."""
        ...

    def describe(self) -> dict[str, Any]:
        """Backend and model, for reports and run databases (no secrets)."""
        ...

    def flush(self) -> None:
        """Write buffered state (the response cache) now."""
        ...

    async def aclose(self) -> None:
        """Release the backend's connections or threads and close the cache."""
        ...


async def run_batch(
    complete: Callable[[LLMRequest[T]], Awaitable[LLMResult[T]]],
    requests: Sequence[LLMRequest[T]],
    concurrency: int,
    on_result: OnResult[T] | None,
    on_exception: Callable[[Exception], LLMResult[T]],
) -> list[LLMResult[T]]:
    """Run ``complete`` over ``requests``, at most ``concurrency`` at once, in input order.

    An unexpected exception of one request (a bug) becomes ``on_exception(exc)`` for that
    request alone, so it cannot sink the others.
    """
    limit = asyncio.Semaphore(concurrency)
    results: list[LLMResult[T]] = [LLMResult()] * len(requests)

    async def run(index: int, request: LLMRequest[T]) -> None:
        async with limit:
            try:
                result = await complete(request)
            except Exception as exc:
                log.exception("unexpected error in request %d", index)
                result = on_exception(exc)
        results[index] = result
        if on_result is not None:
            on_result(index, result)

    await asyncio.gather(*(run(i, r) for i, r in enumerate(requests)))
    return results


def internal_error(exc: Exception, model: str) -> LLMResult[Any]:
    """The error value of a request that met an unexpected exception."""
    return LLMResult(
        error=LLMError(ErrorKind.INTERNAL, f"{type(exc).__name__}: {exc}"), model=model
    )


class Layer:
    """A gateway layer: adds one concern to ``complete`` and hands everything else to the
    gateway it wraps (the way pydantic-ai's ``WrapperModel`` wraps a model).

    Args:
        inner: The gateway this layer wraps.
    """

    def __init__(self, inner: Gateway) -> None:
        self.inner = inner

    @property
    def model(self) -> str:
        return self.inner.model

    @property
    def capabilities(self) -> Capabilities:
        return self.inner.capabilities

    async def complete(self, request: LLMRequest[T]) -> LLMResult[T]:
        return await self.inner.complete(request)

    async def batch(
        self,
        requests: Sequence[LLMRequest[T]],
        concurrency: int | None = None,
        on_result: OnResult[T] | None = None,
    ) -> list[LLMResult[T]]:
        # Through this layer's own ``complete``, so a batch gets every concern of the stack;
        # no limit unless asked (the client above the stack sets one).
        return await run_batch(
            self.complete,
            requests,
            concurrency or max(1, len(requests)),
            on_result,
            lambda exc: internal_error(exc, self.model),
        )

    def usage(self) -> dict[str, Any]:
        return self.inner.usage()

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def flush(self) -> None:
        self.inner.flush()

    async def aclose(self) -> None:
        await self.inner.aclose()
