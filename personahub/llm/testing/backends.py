"""In-process test doubles of a backend, like pydantic-ai's ``FunctionModel`` and ``TestModel``.

* :class:`FunctionBackend`: a Python function gets each
  :class:`~personahub.llm.backends.base.BackendCall` and returns the reply text (or a whole
  :class:`~personahub.llm.backends.base.BackendReply`); it may raise
  :class:`~personahub.llm.retry.TransportError` to script a failure the retry layer sees.
* :class:`TestBackend`: answers any JSON schema with a valid instance, its free-text fields
  varied deterministically by the prompt and the seed; free-text requests get an echo.

Pass one to ``LLMClient(settings, backend=...)``. Importing this module also registers
``test`` as a backend name (for settings and scenario files in tests); the CLI never imports
it, so it cannot be chosen there.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from personahub.llm.backends.base import BackendCall, BackendReply, Capabilities
from personahub.llm.backends.registry import register_backend
from personahub.llm.testing.schema_instances import generate_instance, vary_strings
from personahub.llm.types import Message, Usage

if TYPE_CHECKING:
    from personahub.llm.settings import LLMSettings

Reply = str | BackendReply
CallFunction = Callable[[BackendCall], Reply | Awaitable[Reply]]
"""What a :class:`FunctionBackend` runs: a call in, the reply text (or reply) out."""


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
    """

    def __init__(
        self, function: CallFunction, model: str = "function-model", name: str = "function"
    ) -> None:
        self.function = function
        self.model = model
        self.name = name
        self.capabilities = Capabilities()
        self.calls: list[BackendCall] = []

    async def complete(self, call: BackendCall) -> BackendReply:
        self.calls.append(call)
        reply = self.function(call)
        if inspect.isawaitable(reply):
            reply = await reply
        if isinstance(reply, BackendReply):
            return reply
        return BackendReply(
            text=reply, usage=count_tokens(call.messages, reply), endpoint=self.name
        )

    async def aclose(self) -> None:
        """Nothing to release."""


def schema_answer(call: BackendCall) -> str:
    """A valid answer to ``call``: a schema instance varied by prompt and seed, or an echo of
    the last user message for free text."""
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
