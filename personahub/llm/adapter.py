"""The innermost layer: a :class:`~personahub.llm.backends.base.Backend` as a gateway.

It turns a request into one backend call (the schema sent as JSON schema, the configured
sampling defaults filled in) and the reply into a result with the raw text; parsing is the
re-ask layer's. A failed call raises :class:`~personahub.llm.retry.TransportError` for the
retry layer above.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from personahub.llm.backends.base import Backend, BackendCall, BackendReply, Capabilities
from personahub.llm.gateway import OnResult, internal_error, run_batch
from personahub.llm.options import sample_distribution
from personahub.llm.schemas import SchemaTable, sampling
from personahub.llm.settings import LLMSettings
from personahub.llm.types import LLMRequest, LLMResult, T


class BackendGateway:
    """Sends each request to ``backend`` once.

    Args:
        backend: The transport.
        settings: Supplies the sampling defaults.
        schemas: The gateway's schema table (shared with the cache layer).
    """

    def __init__(self, backend: Backend, settings: LLMSettings, schemas: SchemaTable) -> None:
        self.backend = backend
        self.settings = settings
        self.schemas = schemas

    @property
    def model(self) -> str:
        return self.backend.model

    @property
    def capabilities(self) -> Capabilities:
        return self.backend.capabilities

    async def complete(self, request: LLMRequest[T]) -> LLMResult[T]:
        """One backend call. Raises TransportError when it fails."""
        temperature, max_tokens = sampling(request, self.settings)
        schema = self.schemas.entry(request.schema)[0] if request.schema is not None else None
        call = BackendCall(
            messages=list(request.messages),
            schema=schema,
            schema_name=request.schema.__name__ if request.schema is not None else "",
            temperature=temperature,
            max_tokens=max_tokens,
            seed=request.seed,
            options=request.options,
        )
        started = time.perf_counter()
        reply = await (self._options(call) if call.options else self.backend.complete(call))
        return LLMResult(
            text=reply.text,
            usage=reply.usage,
            # The local backend knows its generation time apart from its queueing.
            latency_s=reply.service_s
            if reply.service_s is not None
            else time.perf_counter() - started,
            model=self.model,
            endpoint=reply.endpoint,
            messages=reply.messages or tuple(call.messages),
            distribution=reply.distribution,
        )

    async def _options(self, call: BackendCall) -> BackendReply:
        """An option call: scored by the backend where it reads token probabilities, else
        sampled ``option_samples`` times (as one metered call with the samples' tokens)."""
        scorer = self.backend.capabilities.option_logprobs
        if scorer is not None:
            return await scorer(call)
        return await sample_distribution(self.backend.complete, call, self.settings.option_samples)

    async def batch(
        self,
        requests: Sequence[LLMRequest[T]],
        concurrency: int | None = None,
        on_result: OnResult[T] | None = None,
    ) -> list[LLMResult[T]]:
        return await run_batch(
            self.complete,
            requests,
            concurrency or self.settings.concurrency,
            on_result,
            lambda exc: internal_error(exc, self.model),
        )

    def usage(self) -> dict[str, Any]:
        """Nothing is metered here; the metering layers do it."""
        return {}

    def describe(self) -> dict[str, Any]:
        return self.settings.describe()

    def flush(self) -> None:
        """Nothing buffered at this layer."""

    async def aclose(self) -> None:
        await self.backend.aclose()
