"""Option scoring on an OpenAI-compatible server, through ``logprobs``/``top_logprobs``.

One chat completion of one token (``max_tokens=1, logprobs=true, top_logprobs=20``): the
top tokens of the reply's first position are mapped onto the option labels
(:func:`personahub.llm.options.match_top_tokens`). A server that returns no logprobs (or
refuses the parameter), or whose top tokens name no label, is asked ``option_samples`` times
instead (:func:`personahub.llm.options.sample_distribution`); a server that returned none
once is not asked for them again.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import openai

from personahub.llm.backends.base import BackendCall, BackendReply
from personahub.llm.options import match_top_tokens, sample_distribution
from personahub.llm.types import OptionDistribution, Usage

if TYPE_CHECKING:
    from personahub.llm.backends.endpoints import Endpoint

TOP_LOGPROBS = 20
"""OpenAI's maximum; servers that allow fewer clip it."""

Classify = Callable[[Exception, str], Exception]


def top_tokens(data: dict[str, Any]) -> list[tuple[str, float]]:
    """The first position's top tokens and logprobs of a chat completion (OpenAI's shape);
    empty when it has none."""
    choices = data.get("choices") or [{}]
    content = (choices[0].get("logprobs") or {}).get("content") or []
    if not content:
        return []
    return [(str(t["token"]), float(t["logprob"])) for t in content[0].get("top_logprobs") or []]


def _refuses_logprobs(exc: openai.APIStatusError) -> bool:
    return exc.status_code in (400, 422, 500, 501) and "logprob" in str(exc.message).lower()


class OptionScorer:
    """Scores option calls on a backend's endpoints; remembers which give no logprobs.

    Args:
        model: The model name sent.
        pick: The endpoint for the next call (least in flight first).
        complete: The backend's own call, for the sampling fallback.
        samples: Sampled answers in the fallback.
        classify: Turns an SDK exception at an endpoint into a TransportError.
    """

    def __init__(
        self,
        model: str,
        pick: Callable[[], Endpoint | None],
        complete: Callable[[BackendCall], Awaitable[BackendReply]],
        samples: int,
        classify: Classify,
    ) -> None:
        self.model = model
        self.pick = pick
        self.complete = complete
        self.samples = samples
        self.classify = classify
        self.without_logprobs: set[str] = set()

    async def score(self, call: BackendCall) -> BackendReply:
        """The distribution over ``call.options``. Raises TransportError on failure."""
        assert call.options is not None
        endpoint = self.pick()
        assert endpoint is not None
        if endpoint.label not in self.without_logprobs:
            data = await self._ask(endpoint, call)
            probs = match_top_tokens(top_tokens(data), call.options) if data else None
            if probs is not None:
                usage = data.get("usage") or {}
                distribution = OptionDistribution(probs)
                return BackendReply(
                    distribution.to_text(),
                    Usage(usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 1),
                    endpoint.label,
                    distribution=distribution,
                )
            if not data or not top_tokens(data):
                self.without_logprobs.add(endpoint.label)
        return await sample_distribution(self.complete, call, self.samples)

    async def _ask(self, endpoint: Endpoint, call: BackendCall) -> dict[str, Any]:
        """One one-token completion with logprobs; ``{}`` when the server refuses them."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": call.messages,
            "temperature": call.temperature,
            "max_tokens": 1,
            "logprobs": True,
            "top_logprobs": TOP_LOGPROBS,
        }
        if call.seed is not None:
            body["seed"] = call.seed
        endpoint.in_flight += 1
        try:
            raw = await endpoint.client.post("/chat/completions", cast_to=bytes, body=body)
        except openai.APIStatusError as exc:
            if _refuses_logprobs(exc):
                return {}
            raise self.classify(exc, endpoint.label) from None
        except openai.OpenAIError as exc:
            raise self.classify(exc, endpoint.label) from None
        finally:
            endpoint.in_flight -= 1
        endpoint.calls += 1
        try:
            data = json.loads(raw)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
