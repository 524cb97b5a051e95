"""A gateway whose ``batch`` runs on Ray workers: how ``personahub build --engine ray`` works.

:class:`RayBatchClient` is a :class:`~personahub.llm.gateway.Gateway`, so it serves wherever
code takes one (the build's Text-to-Persona and Persona-to-Persona stages). Each
``batch`` becomes a Ray Data ``map_batches`` over the requests; every worker is an actor
with its own gateway client (the driver's settings), running its slice concurrently on its
own event loop. Results come back in input order, so the build decides exactly as with the
local engine: same requests and seeds, same answers, same filters, dedup and store writes,
all on the driver.

Requests and results cross to the workers as JSON. The batch's distinct schemas travel once,
with the actors' constructor arguments (Ray pickles classes, also those made at run time),
and the driver validates each returned answer into its request's schema again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel

from personahub.distributed.usage import USAGE_KEYS, UsageDelta, add_usage
from personahub.llm import ErrorKind, LLMClient, LLMError, LLMRequest, LLMResult, LLMSettings
from personahub.llm.backends import Capabilities
from personahub.llm.gateway import OnResult
from personahub.llm.types import T, Usage


def encode_request(request: LLMRequest[Any], schema_index: int) -> str:
    """A request as JSON; its schema travels separately, as an index into the batch's list."""
    return json.dumps(
        {
            "messages": list(request.messages),
            "schema": schema_index,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "seed": request.seed,
            "sample_index": request.sample_index,
            "tag": request.tag,
        }
    )


def decode_request(text: str, schemas: Sequence[type[BaseModel]]) -> LLMRequest[BaseModel]:
    data = json.loads(text)
    index = data.pop("schema")
    return LLMRequest(**data, schema=schemas[index] if index >= 0 else None)


def encode_result(result: LLMResult[Any]) -> str:
    error = result.error
    return json.dumps(
        {
            "text": result.text,
            "parsed": result.raw_json(),
            "usage": [result.usage.prompt_tokens, result.usage.completion_tokens],
            "latency_s": result.latency_s,
            "retries": result.retries,
            "cached": result.cached,
            "model": result.model,
            "endpoint": result.endpoint,
            "error": [error.kind.value, error.message, error.attempts] if error else None,
            "messages": list(result.messages),
        }
    )


def decode_result(text: str, request: LLMRequest[T]) -> LLMResult[T]:
    data = json.loads(text)
    parsed = None
    if data["parsed"] is not None and request.schema is not None:
        parsed = request.schema.model_validate(data["parsed"])
    error = data["error"]
    return LLMResult(
        text=data["text"],
        parsed=parsed,
        usage=Usage(*data["usage"]),
        latency_s=data["latency_s"],
        retries=data["retries"],
        cached=data["cached"],
        model=data["model"],
        endpoint=data["endpoint"],
        error=LLMError(ErrorKind(error[0]), error[1], error[2]) if error else None,
        messages=tuple(data["messages"]),
    )


class _GatewayWorker:
    """Ray actor body: run a slice of requests through this worker's own gateway."""

    def __init__(self, settings: LLMSettings, schemas: list[type[BaseModel]]) -> None:
        self.schemas = schemas
        self.loop = asyncio.new_event_loop()
        self.client = LLMClient(settings)
        self.usage = UsageDelta()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        requests = [decode_request(str(text), self.schemas) for text in batch["request"]]
        results = self.loop.run_until_complete(self.client.batch(requests))
        self.client.flush()
        out: dict[str, Any] = {
            "index": batch["index"],
            "result": np.array([encode_result(r) for r in results], dtype=object),
        }
        return {**out, **self.usage.columns(self.client, len(results))}

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.loop.run_until_complete(self.client.aclose())


class RayBatchClient:
    """A :class:`~personahub.llm.gateway.Gateway` whose ``batch`` runs on Ray workers
    (``complete`` is a batch of one).

    Args:
        client: The driver's gateway: its settings go to the workers; it makes no calls.
        workers: Ray actors running requests concurrently.
    """

    def __init__(self, client: LLMClient, workers: int = 2) -> None:
        self.client = client
        self.settings = client.settings
        self.workers = workers
        self._usage: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()

    @property
    def model(self) -> str:
        return self.client.model

    @property
    def capabilities(self) -> Capabilities:
        """None of the backend's: the workers own their backends (and warm them up)."""
        return Capabilities()

    def describe(self) -> dict[str, Any]:
        return self.client.describe()

    def _run(self, requests: Sequence[LLMRequest[Any]], concurrency: int) -> list[str]:
        import ray.data

        size = max(2 * concurrency, 8)
        # Schemas go to the workers once, pickled by Ray with the actor's arguments: some
        # are built at run time (create_model) and cannot be imported by name.
        schemas = list(dict.fromkeys(r.schema for r in requests if r.schema is not None))
        where = {schema: i for i, schema in enumerate(schemas)}
        rows = [
            {"index": i, "request": encode_request(r, -1 if r.schema is None else where[r.schema])}
            for i, r in enumerate(requests)
        ]
        dataset = ray.data.from_items(
            rows,
            override_num_blocks=max(1, min(len(requests) // size, 64 * self.workers)),
        ).map_batches(
            _GatewayWorker,
            fn_constructor_args=(self.settings, schemas),
            batch_size=size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=self.workers),
        )
        texts: list[str] = [""] * len(requests)
        for batch in dataset.iter_batches(batch_format="numpy", batch_size=None):
            add_usage(self._usage, batch)
            for index, text in zip(batch["index"], batch["result"], strict=True):
                texts[int(index)] = str(text)
        return texts

    async def complete(self, request: LLMRequest[T]) -> LLMResult[T]:
        """One request, on a worker."""
        return (await self.batch([request]))[0]

    async def batch(
        self,
        requests: Sequence[LLMRequest[T]],
        concurrency: int | None = None,
        on_result: OnResult[T] | None = None,
    ) -> list[LLMResult[T]]:
        """Like :meth:`LLMClient.batch`: results in input order, errors as values."""
        if not requests:
            return []
        per_worker = concurrency or self.settings.concurrency
        # Ray's driver loop blocks; run it beside this event loop, not on it.
        texts = await asyncio.to_thread(self._run, requests, per_worker)
        results = [decode_result(t, r) for t, r in zip(texts, requests, strict=True)]
        for index, result in enumerate(results):
            if result.error is not None:
                self._errors[result.error.kind.value] += 1
            if on_result is not None:
                on_result(index, result)
        return results

    def usage(self) -> dict[str, Any]:
        """The workers' summed usage (calls, cache hits, tokens, retries, errors)."""
        out: dict[str, Any] = {k: self._usage[k] for k in USAGE_KEYS}
        out["total_tokens"] = out["prompt_tokens"] + out["completion_tokens"]
        out["errors"] = dict(self._errors)
        return out

    def flush(self) -> None:
        """Workers write their own caches after every slice."""

    async def aclose(self) -> None:
        await self.client.aclose()

    async def __aenter__(self) -> RayBatchClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
