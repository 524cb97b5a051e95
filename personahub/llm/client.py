"""The LLM gateway client: the one way this project talks to a language model.

``LLMClient`` is assembled from layers, each a :class:`~personahub.llm.gateway.Gateway`
wrapping the next, outermost first::

    OutcomeLayer   count each request's cache hit, retries and error; scrub secrets
    CacheLayer     answer from the response cache; store final replies (when enabled)
    ReaskLayer     validate structured replies, repair, re-ask; sum the attempts
    BudgetLayer    refuse a call once the budget is spent (re-asks included)
    MeterLayer     count each backend call: tokens, latency, endpoint, tag
    RetryLayer     retry transient transport errors with backoff and jitter
    BackendGateway one backend call

``complete`` never raises: a failure comes back as an error value. ``chat``/``structured``
are the raising single-call conveniences; ``batch`` runs many requests concurrently and
returns results in input order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from personahub.llm.adapter import BackendGateway
from personahub.llm.backends import Backend, Capabilities, create_backend
from personahub.llm.cache import CacheLayer, ResponseCache
from personahub.llm.gateway import Gateway, OnResult, internal_error, run_batch
from personahub.llm.meter import (
    Budget,
    BudgetLayer,
    Meter,
    MeterLayer,
    OutcomeLayer,
    combine_usage,
)
from personahub.llm.reask import ReaskLayer
from personahub.llm.retry import RetryLayer, RetryPolicy, TransportError
from personahub.llm.schemas import SchemaTable
from personahub.llm.settings import LLMSettings, load_settings
from personahub.llm.types import LLMCallError, LLMRequest, LLMResult, Message, T

log = logging.getLogger("personahub.llm")


class LLMClient:
    """The gateway.

    Args:
        settings: Configuration; defaults to :func:`load_settings` (env + config file).
        backend: A backend instance; defaults to the one ``settings.backend`` names.
    """

    def __init__(self, settings: LLMSettings | None = None, backend: Backend | None = None):
        self.settings = settings or load_settings()
        self.backend = backend or create_backend(self.settings)
        self.cache = ResponseCache(self.settings.cache_path) if self.settings.cache else None
        price_in, price_out = self.settings.token_prices()
        self.meter = Meter(price_per_prompt_token=price_in, price_per_completion_token=price_out)
        schemas = SchemaTable()
        stack: Gateway = BackendGateway(self.backend, self.settings, schemas)
        policy = RetryPolicy(
            self.settings.max_retries, self.settings.backoff_base_s, self.settings.backoff_max_s
        )
        stack = RetryLayer(stack, policy, on_retry=self._log_retry)
        stack = MeterLayer(stack, self.meter)
        budget = Budget(self.settings.max_calls, self.settings.max_total_tokens)
        stack = BudgetLayer(stack, budget, self.meter)
        stack = ReaskLayer(stack, self.settings.max_reasks)
        if self.cache is not None:
            stack = CacheLayer(stack, self.cache, self.settings, schemas, self.backend.name)
        self._outcome = OutcomeLayer(stack, self.meter, self.settings.secrets())
        self._earlier_usage: dict[str, Any] = {}

    @property
    def model(self) -> str:
        return self.backend.model

    @property
    def capabilities(self) -> Capabilities:
        return self.backend.capabilities

    async def preflight(self) -> None:
        """Check the backend can work before a long job starts (its ``preflight``
        capability, where it has one).

        Without a configured model, the backend may learn it here (the model a server
        serves); the settings then record it.

        Raises:
            ConfigError: The model file or server is unusable, or a server serves several
                models and none was chosen; the message is one line.
        """
        if self.capabilities.preflight is not None:
            await self.capabilities.preflight()
        self._adopt_backend_model()

    def _adopt_backend_model(self) -> None:
        """Record the model the backend found (a GGUF's own name, the one a server serves)
        in the settings, so provenance (``describe``, ``settings.recorded()``) names it."""
        if self.settings.model_name != self.backend.model:
            self.settings = self.settings.model_copy(update={"model": self.backend.model})

    async def complete(self, request: LLMRequest[T]) -> LLMResult[T]:
        """Run one request through cache, budget, retries, repair and metering. Never raises
        for a failed request (a bug still raises; :meth:`batch` isolates those)."""
        return await self._outcome.complete(request)

    def _log_retry(self, exc: TransportError, wait: float) -> None:
        self.meter.record_retry(exc.endpoint or self.backend.name)
        log.info("retrying in %.2fs after %s", wait, self._outcome.scrub(str(exc)))

    async def chat(self, messages: Sequence[Message], **params: Any) -> LLMResult:
        """One free-text request. Raises LLMCallError on failure."""
        result: LLMResult = await self.complete(LLMRequest(messages=list(messages), **params))
        if result.error is not None:
            raise LLMCallError(result.error)
        return result

    async def structured(self, messages: Sequence[Message], schema: type[T], **params: Any) -> T:
        """One request whose reply is validated into ``schema``. Raises LLMCallError."""
        result = await self.complete(LLMRequest(messages=list(messages), schema=schema, **params))
        if result.error is not None:
            raise LLMCallError(result.error)
        assert result.parsed is not None
        return result.parsed

    async def batch(
        self,
        requests: Sequence[LLMRequest[T]],
        concurrency: int | None = None,
        on_result: OnResult[T] | None = None,
    ) -> list[LLMResult[T]]:
        """Run requests concurrently under a limit; results come back in input order.

        Args:
            requests: The requests.
            concurrency: At most this many in flight; defaults to ``settings.concurrency``.
            on_result: Called as each request finishes (for progress bars and incremental
                writes), with its index and result.
        """
        return await run_batch(
            self.complete,
            requests,
            concurrency or self.settings.concurrency,
            on_result,
            lambda exc: self._outcome.settle(internal_error(exc, self.model)),
        )

    def usage(self) -> dict[str, Any]:
        """Metered usage so far, with cache counters and, for backends with several
        endpoints, per-endpoint errors and failovers; added to :meth:`continue_usage`'s."""
        usage = self._outcome.usage()
        return combine_usage(self._earlier_usage, usage) if self._earlier_usage else usage

    def continue_usage(self, earlier: dict[str, Any]) -> None:
        """Count on from ``earlier`` (a usage snapshot): a resumed run's usage is the whole
        run's, not only the part this client served."""
        self._earlier_usage = dict(earlier)

    def describe(self) -> dict[str, Any]:
        """Backend and model, for reports and run databases (no secrets)."""
        return self.settings.describe()

    def flush(self) -> None:
        """Write buffered cache entries now (e.g. at the end of a simulation step)."""
        self._outcome.flush()

    async def aclose(self) -> None:
        await self._outcome.aclose()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
