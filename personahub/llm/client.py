"""The LLM gateway client: the one way this project talks to a language model.

``LLMClient`` wraps a backend with, in order: the response cache, the budget, retries with
backoff, JSON repair and re-asking, and metering. ``complete`` never raises: a failure comes
back as an error value. ``chat``/``structured`` are the raising single-call conveniences;
``batch`` runs many requests concurrently and returns results in input order.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from personahub import prompts
from personahub.llm.backends import Backend, BackendCall, create_backend
from personahub.llm.cache import CachedReply, ResponseCache, cache_key, canonical_json
from personahub.llm.meter import Budget, Meter
from personahub.llm.repair import ParseFailure, parse_structured
from personahub.llm.retry import RetryPolicy, TransportError, call_with_retries
from personahub.llm.settings import LLMSettings, load_settings
from personahub.llm.types import (
    ErrorKind,
    LLMCallError,
    LLMError,
    LLMRequest,
    LLMResult,
    Message,
    Usage,
)

log = logging.getLogger("personahub.llm")
T = TypeVar("T", bound=BaseModel)


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
        self.meter = Meter(
            price_per_1k_prompt=self.settings.price_per_1k_prompt,
            price_per_1k_completion=self.settings.price_per_1k_completion,
        )
        self.budget = Budget(self.settings.max_calls, self.settings.max_total_tokens)
        self.policy = RetryPolicy(
            self.settings.max_retries, self.settings.backoff_base_s, self.settings.backoff_max_s
        )
        self._rng = random.Random()
        self._schemas: dict[type[BaseModel], tuple[dict[str, Any], str]] = {}
        self._secrets = self.settings.secrets()

    @property
    def model(self) -> str:
        return self.backend.model

    def schema_of(self, model: type[BaseModel]) -> dict[str, Any]:
        """The JSON schema sent for ``model`` (computed once per class)."""
        return self._schema_entry(model)[0]

    def _schema_entry(self, model: type[BaseModel]) -> tuple[dict[str, Any], str]:
        """The schema and its canonical JSON (for cache keys), computed once per class."""
        entry = self._schemas.get(model)
        if entry is None:
            schema = model.model_json_schema()
            entry = (schema, canonical_json(schema))
            self._schemas[model] = entry
        return entry

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _fail(self, kind: ErrorKind, message: str, attempts: int, **fields: Any) -> LLMResult:
        error = LLMError(kind, self._scrub(message), attempts)
        self.meter.record_error(error)
        return LLMResult(error=error, model=self.model, **fields)

    async def complete(self, request: LLMRequest) -> LLMResult:
        """Run one request through cache, budget, retries, repair and metering. Never raises."""
        started = time.perf_counter()
        schema, schema_json = (
            self._schema_entry(request.schema) if request.schema is not None else (None, None)
        )
        temperature = (
            self.settings.temperature if request.temperature is None else request.temperature
        )
        max_tokens = self.settings.max_tokens if request.max_tokens is None else request.max_tokens
        messages: list[Message] = list(request.messages)
        key = None
        if self.cache is not None:
            key = cache_key(
                backend=self.backend.name,
                model=self.model,
                messages=messages,
                params={"temperature": temperature, "max_tokens": max_tokens, "seed": request.seed},
                schema=schema,
                sample_index=request.sample_index,
                schema_json=schema_json,
            )
            hit = self.cache.get(key)
            if hit is not None:
                self.meter.cache_hits += 1
                parsed = None
                if request.schema is not None:
                    try:
                        parsed = parse_structured(hit.text, request.schema)
                    except ParseFailure:
                        hit = None
                if hit is not None:
                    return LLMResult(
                        text=hit.text,
                        parsed=parsed,
                        usage=Usage(hit.prompt_tokens, hit.completion_tokens),
                        latency_s=time.perf_counter() - started,
                        cached=True,
                        model=hit.model,
                        endpoint="cache",
                        messages=tuple(messages),
                    )

        call = BackendCall(
            messages=messages,
            schema=schema,
            schema_name=request.schema.__name__ if request.schema is not None else "",
            temperature=temperature,
            max_tokens=max_tokens,
            seed=request.seed,
        )
        usage = Usage()
        retries = 0
        attempts = 0
        sent: tuple[Message, ...] = tuple(messages)
        while True:
            refusal = self.budget.check(self.meter)
            if refusal is not None:
                self.meter.record_error(refusal)
                return LLMResult(error=refusal, model=self.model, usage=usage, retries=retries)
            call_started = time.perf_counter()
            try:
                reply, transport_retries = await call_with_retries(
                    lambda _attempt, c=call: self.backend.complete(c),
                    self.policy,
                    self._rng,
                    on_retry=self._log_retry,
                )
            except TransportError as exc:
                self.meter.retries += getattr(exc, "attempts", 1) - 1
                return self._fail(
                    exc.kind,
                    exc.message,
                    getattr(exc, "attempts", 1) + retries,
                    usage=usage,
                    retries=retries + getattr(exc, "attempts", 1) - 1,
                    latency_s=time.perf_counter() - started,
                    messages=sent,
                )
            attempts += 1
            retries += transport_retries
            self.meter.retries += transport_retries
            usage = usage + reply.usage
            elapsed = time.perf_counter() - call_started
            self.meter.record_call(
                reply.endpoint,
                reply.usage,
                reply.service_s if reply.service_s is not None else elapsed,
                request.tag,
            )
            sent = reply.messages or tuple(call.messages)
            parsed = None
            if request.schema is not None:
                try:
                    parsed = parse_structured(reply.text, request.schema)
                except ParseFailure as failure:
                    if attempts > self.settings.max_reasks:
                        return self._fail(
                            failure.kind,
                            f"{failure.message} (after {attempts} attempts)",
                            attempts,
                            text=reply.text,
                            usage=usage,
                            retries=retries,
                            latency_s=time.perf_counter() - started,
                            endpoint=reply.endpoint,
                            messages=sent,
                        )
                    retries += 1
                    self.meter.retries += 1
                    reask = prompts.render("llm/reask", problem=failure.message)
                    call = BackendCall(
                        messages=[
                            *call.messages,
                            {"role": "assistant", "content": reply.text},
                            {"role": "user", "content": reask},
                        ],
                        schema=call.schema,
                        schema_name=call.schema_name,
                        temperature=call.temperature,
                        max_tokens=call.max_tokens,
                        seed=None if call.seed is None else call.seed + attempts,
                    )
                    continue
            if key is not None and self.cache is not None:
                self.cache.put(
                    key,
                    CachedReply(
                        reply.text, usage.prompt_tokens, usage.completion_tokens, self.model
                    ),
                )
            return LLMResult(
                text=reply.text,
                parsed=parsed,
                usage=usage,
                latency_s=time.perf_counter() - started,
                retries=retries,
                model=self.model,
                endpoint=reply.endpoint,
                messages=sent,
            )

    def _log_retry(self, exc: TransportError, wait: float) -> None:
        log.info("retrying in %.2fs after %s", wait, self._scrub(str(exc)))

    async def chat(self, messages: Sequence[Message], **params: Any) -> LLMResult:
        """One free-text request. Raises LLMCallError on failure."""
        result = await self.complete(LLMRequest(messages=list(messages), **params))
        if result.error is not None:
            raise LLMCallError(result.error)
        return result

    async def structured(self, messages: Sequence[Message], schema: type[T], **params: Any) -> T:
        """One request whose reply is validated into ``schema``. Raises LLMCallError."""
        result = await self.complete(LLMRequest(messages=list(messages), schema=schema, **params))
        if result.error is not None:
            raise LLMCallError(result.error)
        assert result.parsed is not None
        return result.parsed  # type: ignore[return-value]

    async def batch(
        self,
        requests: Sequence[LLMRequest],
        concurrency: int | None = None,
        on_result: Callable[[int, LLMResult], None] | None = None,
    ) -> list[LLMResult]:
        """Run requests concurrently under a limit; results come back in input order.

        Args:
            requests: The requests.
            concurrency: At most this many in flight; defaults to ``settings.concurrency``.
            on_result: Called as each request finishes (for progress bars and incremental
                writes), with its index and result.
        """
        limit = asyncio.Semaphore(concurrency or self.settings.concurrency)
        results: list[LLMResult] = [LLMResult()] * len(requests)

        async def run(index: int, request: LLMRequest) -> None:
            async with limit:
                try:
                    result = await self.complete(request)
                except Exception as exc:  # a bug must not sink the other requests
                    log.exception("unexpected error in request %d", index)
                    result = self._fail(ErrorKind.INTERNAL, f"{type(exc).__name__}: {exc}", 1)
            results[index] = result
            if on_result is not None:
                on_result(index, result)

        await asyncio.gather(*(run(i, r) for i, r in enumerate(requests)))
        return results

    def usage(self) -> dict[str, Any]:
        """Metered usage so far, with cache counters and, for backends with several
        endpoints, per-endpoint errors and failovers."""
        report = getattr(self.backend, "endpoint_usage", None)
        snapshot = self.meter.snapshot(report() if report is not None else None)
        if self.cache is not None:
            snapshot["cache_misses"] = self.cache.misses
        return snapshot

    def describe(self) -> dict[str, Any]:
        """Backend and model, for reports and run databases (no secrets)."""
        return self.settings.describe()

    def flush(self) -> None:
        """Write buffered cache entries now (e.g. at the end of a simulation step)."""
        if self.cache is not None:
            self.cache.flush()

    async def aclose(self) -> None:
        if self.cache is not None:
            self.cache.close()
        await self.backend.aclose()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
