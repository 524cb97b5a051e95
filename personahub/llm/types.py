"""Value types of the LLM gateway: requests, results, usage and error values.

Everything that crosses the gateway boundary is an immutable value, so results can be cached,
logged and compared without surprises.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic

from pydantic import BaseModel
from typing_extensions import TypeVar

# The schema of a structured request. A free-text request names no schema, so nothing binds
# T and it defaults to BaseModel: its result's ``parsed`` is simply always None.
T = TypeVar("T", bound=BaseModel, default=BaseModel)

Message = dict[str, str]
"""One chat message: ``{"role": "system" | "user" | "assistant", "content": "..."}``."""


class ErrorKind(StrEnum):
    """Why a request finally failed. Transient kinds are retried before they are reported."""

    TIMEOUT = "timeout"
    CONNECTION = "connection"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    BAD_REQUEST = "bad_request"
    AUTH = "auth"
    INVALID_JSON = "invalid_json"
    SCHEMA_VIOLATION = "schema_violation"
    # A reply that validates by type but says nothing: empty, whitespace or emoji only where
    # words were asked for. A validator raises it as a PydanticCustomError of this type.
    EMPTY_ANSWER = "empty_answer"
    BUDGET_EXHAUSTED = "budget_exhausted"
    MODEL_UNAVAILABLE = "model_unavailable"
    INTERNAL = "internal"


TRANSIENT_KINDS = frozenset(
    {ErrorKind.TIMEOUT, ErrorKind.CONNECTION, ErrorKind.RATE_LIMITED, ErrorKind.SERVER_ERROR}
)


@dataclass(frozen=True, slots=True)
class LLMError:
    """A failed request, as a value. ``message`` is already free of secrets."""

    kind: ErrorKind
    message: str
    attempts: int = 1

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.message}"


class LLMCallError(RuntimeError):
    """Raised by the single-call helpers (``chat``/``structured``) when a request fails."""

    def __init__(self, error: LLMError):
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one request (or of the sum of its attempts)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True, slots=True)
class LLMRequest(Generic[T]):
    """One chat request; ``LLMRequest[Out]`` asks for a reply validated into ``Out``.

    Attributes:
        messages: The chat messages, oldest first.
        schema: A pydantic model the reply must validate against, or None for free text.
        temperature: Sampling temperature; None uses the configured default.
        max_tokens: Completion budget; None uses the configured default.
        seed: Sampling seed passed to the backend where it supports one.
        sample_index: Distinguishes repeated samples of the same prompt (in the cache key too).
        tag: A free label (e.g. ``"t2p"``) used for metering by purpose.
        options: Asks for a probability distribution over these option labels as the
            reply to ``messages`` (an option request) instead of generated text; the result
            carries it as ``distribution``. Used without ``schema``.
    """

    messages: tuple[Message, ...] | list[Message]
    schema: type[T] | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    sample_index: int = 0
    tag: str = ""
    options: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class OptionDistribution:
    """The reply to an option request: a probability per option label, summing to 1.

    Attributes:
        probs: Option label -> probability, in the request's option order.
        method: How it was obtained: ``"logprobs"`` (token probabilities of the labels) or
            ``"samples"`` (the share of ``samples`` sampled answers, where the backend or
            server gave no token probabilities).
        samples: Sampled answers it counts (0 for ``logprobs``).
    """

    probs: dict[str, float]
    method: str = "logprobs"
    samples: int = 0

    def to_text(self) -> str:
        """As JSON text: the result's ``text``, what the cache stores."""
        return json.dumps({"probs": self.probs, "method": self.method, "samples": self.samples})

    @classmethod
    def from_text(cls, text: str) -> OptionDistribution:
        """Back from :meth:`to_text`. Raises ValueError or KeyError on other text."""
        data = json.loads(text)
        probs = {str(k): float(v) for k, v in data["probs"].items()}
        return cls(probs, str(data["method"]), int(data["samples"]))


@dataclass(frozen=True, slots=True)
class LLMResult(Generic[T]):
    """The outcome of one request: text and parsed value, or an error value.

    Attributes:
        text: The final raw reply text ("" on failure).
        parsed: The validated pydantic instance for structured requests, else None.
        usage: Tokens spent, summed over retries and re-asks.
        latency_s: Wall time of the whole request, retries included.
        retries: Transport retries plus re-asks.
        cached: True when served from the response cache.
        model: The model that answered.
        endpoint: The endpoint that answered ("local" for the embedded model).
        error: None on success.
        messages: The messages actually sent (after any schema instructions were added).
        distribution: The answer to an option request (its ``text`` is the same as JSON).
    """

    text: str = ""
    parsed: T | None = None
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    retries: int = 0
    cached: bool = False
    model: str = ""
    endpoint: str = ""
    error: LLMError | None = None
    messages: tuple[Message, ...] = ()
    distribution: OptionDistribution | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def raw_json(self) -> dict[str, Any] | None:
        """The parsed value as plain JSON data, or None."""
        return self.parsed.model_dump(mode="json") if self.parsed is not None else None
