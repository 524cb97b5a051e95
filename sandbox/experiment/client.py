"""One run's view of an experiment's shared gateway client.

Every run of an experiment calls the model through one :class:`~personahub.llm.LLMClient`:
one cache, one budget, one backend (and its connections). A batch of the shared client has its
own concurrency limit, so the runs' batches instead take turns at one semaphore: the limit holds
for the whole experiment, and a run whose step has few requests never holds up the others.
Each view meters its own run's requests, so every run's recorded usage is its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from personahub.llm import LLMClient, LLMRequest, LLMResult
from personahub.llm.gateway import OnResult, internal_error, run_batch
from personahub.llm.meter import Meter, combine_usage
from personahub.llm.types import T


class RunClient:
    """The part of :class:`LLMClient` a run model uses, over a shared client.

    Args:
        shared: The experiment's client.
        limit: The experiment's concurrency limit (``shared.settings.concurrency`` slots).
    """

    def __init__(self, shared: LLMClient, limit: asyncio.Semaphore) -> None:
        self.shared = shared
        self.limit = limit
        self.settings = shared.settings
        self.backend = shared.backend
        price_in, price_out = shared.settings.token_prices()
        self.meter = Meter(price_per_prompt_token=price_in, price_per_completion_token=price_out)
        self._earlier: dict[str, Any] = {}

    @property
    def model(self) -> str:
        return self.shared.model

    async def _complete(self, request: LLMRequest[T]) -> LLMResult[T]:
        async with self.limit:
            return await self.shared.complete(request)

    async def batch(
        self,
        requests: Sequence[LLMRequest[T]],
        concurrency: int | None = None,
        on_result: OnResult[T] | None = None,
    ) -> list[LLMResult[T]]:
        """Answer requests under the experiment's limit (``concurrency`` is ignored: one limit
        for all runs); results in input order."""
        results = await run_batch(
            self._complete,
            requests,
            max(1, len(requests)),  # the shared semaphore limits; this one must not
            on_result,
            lambda exc: internal_error(exc, self.model),
        )
        for result in results:
            self._count(result)
        return results

    def _count(self, result: LLMResult[Any]) -> None:
        if result.cached:
            self.meter.cache_hits += 1
        elif result.usage.total_tokens or result.error is None:
            self.meter.record_call(result.endpoint, result.usage, result.latency_s)
        self.meter.retries += result.retries
        if result.error is not None:
            self.meter.record_error(result.error)

    def usage(self) -> dict[str, Any]:
        """This run's usage (requests it sent), added to :meth:`continue_usage`'s."""
        usage = self.meter.snapshot()
        return combine_usage(self._earlier, usage) if self._earlier else usage

    def continue_usage(self, earlier: dict[str, Any]) -> None:
        self._earlier = dict(earlier)

    def describe(self) -> dict[str, Any]:
        return self.shared.describe()

    def flush(self) -> None:
        self.shared.flush()

    async def aclose(self) -> None:
        """Nothing of its own: the experiment closes the shared client."""
