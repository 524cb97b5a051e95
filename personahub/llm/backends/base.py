"""The backend interface: one transport call, no retries, no parsing.

A backend sends one chat request and returns the raw text and token usage, or raises
:class:`~personahub.llm.retry.TransportError` with the failure classified. Everything else
(cache, retries, repair, metering) lives in the gateway's layers, once, for every backend.
What a backend can do beyond that it declares in its :class:`Capabilities`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from personahub.llm.types import Message, OptionDistribution, Usage


@dataclass(frozen=True, slots=True)
class Capabilities:
    """A backend's optional abilities; None where it has not got one.

    Attributes:
        warm_up: Load the model now rather than on the first request (a slow load the CLI
            shows under a status line).
        structured_modes: The structured-output mode used now, per endpoint.
        endpoint_usage: Per-endpoint errors, failovers and rests, and the failover moves
            (from, to, calls), merged into the gateway's usage snapshot.
        preflight: A cheap check that the backend can work at all (a model file that is a
            GGUF, a server that answers), run before a long job starts; raises ConfigError
            with a one-line message.
        option_logprobs: Scores an option call (``BackendCall.options``) from the model's
            token probabilities of the option labels. Without it, the gateway samples the
            answer ``option_samples`` times instead (see :mod:`personahub.llm.options`).
    """

    warm_up: Callable[[], None] | None = None
    structured_modes: Callable[[], dict[str, str]] | None = None
    endpoint_usage: Callable[[], dict[str, Any]] | None = None
    preflight: Callable[[], Awaitable[None]] | None = None
    option_logprobs: Callable[[BackendCall], Awaitable[BackendReply]] | None = None


@dataclass(frozen=True, slots=True)
class BackendCall:
    """What a backend is asked to do.

    Attributes:
        messages: Chat messages.
        schema: JSON schema the reply must follow, or None for free text.
        schema_name: A short name for the schema (some servers require one).
        temperature: Sampling temperature.
        max_tokens: Completion budget.
        seed: Sampling seed, where supported.
        options: The option labels of an option call (see ``LLMRequest.options``).
    """

    messages: list[Message]
    schema: dict[str, Any] | None
    schema_name: str
    temperature: float
    max_tokens: int
    seed: int | None
    options: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class BackendReply:
    """A backend's answer.

    Attributes:
        text: The assistant message content.
        usage: Token counts reported (or estimated) for this call.
        endpoint: Which endpoint answered ("local" for the embedded model).
        messages: The messages actually sent, when the backend added schema instructions.
        service_s: Time spent generating, when the backend knows it apart from queueing
            (the local backend queues requests for a free model instance).
        distribution: The answer to an option call (``text`` then holds it as JSON).
    """

    text: str
    usage: Usage
    endpoint: str
    messages: tuple[Message, ...] = ()
    service_s: float | None = None
    distribution: OptionDistribution | None = None


class Backend(Protocol):
    """A language-model transport: ``complete`` one call, and ``aclose`` at the end.

    Attributes:
        name: The name it is registered under (part of cache keys).
        model: The model it asks.
        capabilities: Its optional abilities.
    """

    name: str
    model: str
    capabilities: Capabilities

    async def complete(self, call: BackendCall) -> BackendReply:
        """Send one request. Raises TransportError on failure."""
        ...

    async def aclose(self) -> None:
        """Release connections or threads."""
        ...
