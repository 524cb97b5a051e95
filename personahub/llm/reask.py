"""The re-ask layer: validate a structured reply, repair trivial damage, re-ask on failure.

A reply that does not validate into the request's schema, even after the trivial repairs of
:mod:`personahub.llm.repair`, is answered with the problem (``llm/reask`` prompt) and asked
again, up to ``max_reasks`` times, each re-ask a call of its own below (so the budget checks
it). The layer also sums what all attempts of a request took: tokens, retries and time.
"""

from __future__ import annotations

import time
from dataclasses import replace

from personahub import prompts
from personahub.llm.gateway import Gateway, Layer
from personahub.llm.repair import ParseFailure, parse_structured
from personahub.llm.types import LLMError, LLMRequest, LLMResult, Message, T, Usage


class ReaskLayer(Layer):
    """Validates structured replies and re-asks until one validates.

    Args:
        inner: The gateway below.
        max_reasks: Re-asks after the first attempt.
    """

    def __init__(self, inner: Gateway, max_reasks: int) -> None:
        super().__init__(inner)
        self.max_reasks = max_reasks

    async def complete(self, request: LLMRequest[T]) -> LLMResult[T]:
        started = time.perf_counter()
        usage = Usage()
        retries = attempts = 0
        # The messages the model last answered (with any schema note the backend added).
        sent: tuple[Message, ...] = tuple(request.messages)
        current = request
        while True:
            result = await self.inner.complete(current)
            if result.error is not None:
                return self._failed(result, usage, retries, sent, started)
            attempts += 1
            retries += result.retries
            usage = usage + result.usage
            sent = result.messages
            parsed = None
            if request.schema is not None:
                try:
                    parsed = parse_structured(result.text, request.schema)
                except ParseFailure as failure:
                    if attempts > self.max_reasks:
                        error = LLMError(
                            failure.kind, f"{failure.message} (after {attempts} attempts)", attempts
                        )
                        return replace(
                            result,
                            usage=usage,
                            retries=retries,
                            latency_s=time.perf_counter() - started,
                            error=error,
                        )
                    retries += 1
                    current = _reask(current, result.text, failure.message, attempts)
                    continue
            return replace(
                result,
                parsed=parsed,
                usage=usage,
                retries=retries,
                latency_s=time.perf_counter() - started,
            )

    @staticmethod
    def _failed(
        result: LLMResult[T],
        usage: Usage,
        retries: int,
        sent: tuple[Message, ...],
        started: float,
    ) -> LLMResult[T]:
        """A failed attempt as the request's result, with the totals of the attempts before."""
        assert result.error is not None
        usage = usage + result.usage
        retries += result.retries
        if not result.error.attempts:  # refused before any call: nothing more to add
            return replace(result, usage=usage, retries=retries)
        error = replace(result.error, attempts=result.error.attempts + retries - result.retries)
        return replace(
            result,
            error=error,
            usage=usage,
            retries=retries,
            latency_s=time.perf_counter() - started,
            messages=sent,
        )


def _reask(request: LLMRequest[T], reply: str, problem: str, attempts: int) -> LLMRequest[T]:
    """The next attempt: the bad reply and the problem appended, a new sampling seed."""
    return replace(
        request,
        messages=[
            *request.messages,
            {"role": "assistant", "content": reply},
            {"role": "user", "content": prompts.render("llm/reask", problem=problem)},
        ],
        seed=None if request.seed is None else request.seed + attempts,
    )
