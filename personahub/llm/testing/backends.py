"""In-process test doubles of a backend, like pydantic-ai's ``FunctionModel`` and ``TestModel``.

* :class:`FunctionBackend`: a Python function gets each
  :class:`~personahub.llm.backends.base.BackendCall` and returns the reply text (or a whole
  :class:`~personahub.llm.backends.base.BackendReply`); it may raise
  :class:`~personahub.llm.retry.TransportError` to script a failure the retry layer sees. An
  option call (``call.options``) it answers with a weight per option label, which the backend
  normalises, as a backend reading token probabilities would; with ``option_logprobs=False``
  it has no such ability and the gateway samples the function's structured answers instead.
* :class:`TestBackend`: answers any JSON schema with a valid instance, its free-text fields
  varied deterministically by the prompt and the seed; free-text requests get an echo; option
  requests get weights varied by the prompt and the seed.

Pass one to ``LLMClient(settings, backend=...)``. Importing this module also registers
``test`` as a backend name (for settings and scenario files in tests); the CLI never imports
it, so it cannot be chosen there.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from personahub.llm.backends.base import BackendCall, BackendReply, Capabilities
from personahub.llm.backends.registry import register_backend
from personahub.llm.options import normalise
from personahub.llm.retry import TransportError
from personahub.llm.testing.schema_instances import generate_instance, vary_strings
from personahub.llm.types import ErrorKind, Message, OptionDistribution, Usage

if TYPE_CHECKING:
    from personahub.llm.settings import LLMSettings

Reply = str | BackendReply | Mapping[str, float]
CallFunction = Callable[[BackendCall], Reply | Awaitable[Reply]]
"""What a :class:`FunctionBackend` runs: a call in, the reply text (or reply) out; for an
option call, a weight per option label."""


def count_tokens(messages: list[Message], text: str) -> Usage:
    """Whitespace words as tokens, the way the fake OpenAI server counts them."""
    prompt = sum(len(str(m.get("content", "")).split()) for m in messages)
    return Usage(prompt, max(1, len(text.split())))


class FunctionBackend:
    """A backend whose every call is answered by ``function``.

    Args:
        function: Gets the call; returns (or awaits to) the reply text or a BackendReply.
        model: The model name it reports.
        name: The backend name it reports (part of cache keys and run records).
        option_logprobs: Whether it scores option calls itself (see the module docstring).
    """

    def __init__(
        self,
        function: CallFunction,
        model: str = "function-model",
        name: str = "function",
        option_logprobs: bool = True,
    ) -> None:
        self.function = function
        self.model = model
        self.name = name
        self.capabilities = Capabilities(option_logprobs=self.score if option_logprobs else None)
        self.calls: list[BackendCall] = []

    async def _run(self, call: BackendCall) -> Reply:
        self.calls.append(call)
        reply = self.function(call)
        if inspect.isawaitable(reply):
            reply = await reply
        return reply

    async def complete(self, call: BackendCall) -> BackendReply:
        reply = await self._run(call)
        if isinstance(reply, BackendReply):
            return reply
        if not isinstance(reply, str):
            raise TypeError("a FunctionBackend function must answer a call with text")
        return BackendReply(
            text=reply, usage=count_tokens(call.messages, reply), endpoint=self.name
        )

    async def score(self, call: BackendCall) -> BackendReply:
        """An option call: the function's weights per label, normalised."""
        assert call.options is not None
        reply = await self._run(call)
        if isinstance(reply, BackendReply):
            return reply
        if isinstance(reply, str):
            raise TypeError("a FunctionBackend function must answer an option call with weights")
        probs = normalise(reply, call.options)
        if probs is None:
            raise TransportError(ErrorKind.INVALID_JSON, "no option has weight", endpoint=self.name)
        distribution = OptionDistribution(probs)
        return BackendReply(
            text=distribution.to_text(),
            usage=count_tokens(call.messages, ""),
            endpoint=self.name,
            distribution=distribution,
        )

    async def aclose(self) -> None:
        """Nothing to release."""


def schema_answer(call: BackendCall) -> str | dict[str, float]:
    """A valid answer to ``call``: a schema instance varied by prompt and seed, an echo of
    the last user message for free text, or weights varied by prompt and seed for an option
    call."""
    if call.options is not None:
        salt = json.dumps([[m.get("content", "") for m in call.messages], call.seed])
        return {
            label: 1 + int(hashlib.sha256(f"{salt}|{label}".encode()).hexdigest()[:4], 16) % 9
            for label in call.options
        }
    if call.schema is None:
        last = next((m for m in reversed(call.messages) if m.get("role") == "user"), None)
        return "echo: " + (last or {}).get("content", "")[:60]
    salt = json.dumps([[m.get("content", "") for m in call.messages], call.seed])
    instance = vary_strings(call.schema, call.schema, generate_instance(call.schema), salt)
    return json.dumps(instance)


class TestBackend(FunctionBackend):
    """Answers every call validly (see :func:`schema_answer`), deterministically.

    Args:
        model: The model name it reports.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, model: str = "test-model") -> None:
        super().__init__(schema_answer, model=model, name="test")


def _test_backend(settings: LLMSettings) -> TestBackend:
    return TestBackend(settings.model_name)


register_backend("test", _test_backend, default_model="test-model")
