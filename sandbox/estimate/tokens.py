"""Token counts without a model: the embedded model's own tokenizer, or a ratio.

The local backend reports the tokens of the chat-template prompt it decodes, so
:class:`GGUFCounter` renders the messages through the GGUF's own chat template and tokenizes
them with its vocabulary (llama-cpp-python loads it with ``vocab_only=True``: no weights, a
fraction of a second). A served model's tokenizer is not at hand, so :class:`RatioCounter`
divides characters by ``chars_per_token`` from the LLM settings (about 4 for English text
under GPT-style tokenizers; set it to your model's figure).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Protocol, cast

from personahub.llm import LLMSettings
from personahub.llm.types import Message


class TokenCounter(Protocol):
    """Counts what a backend would report as prompt and completion tokens."""

    label: str  # how tokens are counted, for the estimate's printout

    def prompt(self, messages: list[Message]) -> int: ...

    def text(self, text: str) -> int: ...


class RatioCounter:
    """Characters divided by a characters-per-token ratio (message contents only)."""

    def __init__(self, chars_per_token: float):
        self.chars_per_token = chars_per_token
        self.label = f"{chars_per_token:g} characters per token"

    def prompt(self, messages: list[Message]) -> int:
        return self.text("".join(str(m.get("content", "")) for m in messages))

    def text(self, text: str) -> int:
        return round(len(text) / self.chars_per_token)


class GGUFCounter:
    """The GGUF model's tokenizer and chat template, as llama-cpp's chat completion uses them."""

    def __init__(self, path: Path):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.llama = _vocabulary(str(path))
        self.label = f"the tokenizer of {path.name}"
        decode = self.llama.detokenize
        self.formatter = Jinja2ChatFormatter(
            template=self.llama.metadata["tokenizer.chat_template"],
            eos_token=decode([self.llama.token_eos()]).decode(),
            bos_token=decode([self.llama.token_bos()]).decode(),
        )

    def prompt(self, messages: list[Message]) -> int:
        rendered = self.formatter(messages=cast(Any, messages))  # OpenAI-shaped dicts
        tokens = self.llama.tokenize(
            rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True
        )
        return len(tokens)

    def text(self, text: str) -> int:
        # +1: the end-of-turn token the model generates to stop.
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False)) + 1


@functools.cache
def _vocabulary(path: str) -> Any:
    from llama_cpp import Llama

    return Llama(model_path=path, vocab_only=True, verbose=False)


def counter_for(settings: LLMSettings, backend_name: str) -> TokenCounter:
    """The embedded model's tokenizer for the ``local`` backend when its GGUF can be read;
    the settings' characters-per-token ratio otherwise."""
    if backend_name == "local":
        from personahub.llm.backends.local import ModelUnavailableError, resolve_model_path

        try:
            return GGUFCounter(resolve_model_path(settings))
        except (ModelUnavailableError, ImportError, ValueError, KeyError):
            pass  # no model file or runtime (or no chat template): the ratio still estimates
    return RatioCounter(settings.chars_per_token)
