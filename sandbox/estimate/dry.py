"""The estimate's backend: it answers every request with a typical answer, calling no model.

A typical answer is a valid instance of the request's JSON schema whose strings use the
share of their bound that :class:`~sandbox.estimate.fill.AnswerFill` gives (made of common
English words, so that they tokenize like prose), whose enums and numbers are drawn from
their range, and whose flags and empty strings occur as often as the fill says. Draws come
from the request's own seed, so an estimate is reproducible. The usage it reports is the
token counter's count of the prompt and of the answer, which the gateway's meter adds up as
it would for a real backend.

Given :class:`KnownAnswers` instead (a model whose answers are known in advance, such as the
test fixture server's), it answers exactly those, so the run's own end conditions (an NPC
line repeating an earlier one ends the conversation) play out as they will: that measures
the estimate's machinery apart from its typical-answer tables.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from personahub.llm.backends.base import BackendCall, BackendReply, Capabilities
from personahub.llm.types import OptionDistribution, Usage
from sandbox.estimate.fill import UNBOUNDED_CHARS, AnswerFill, FieldFill
from sandbox.estimate.tokens import TokenCounter

WORDS = [
    "the",
    "price",
    "seems",
    "fair",
    "for",
    "what",
    "you",
    "get",
    "and",
    "I",
    "would",
    "try",
    "it",
    "once",
    "my",
    "friends",
    "say",
    "it",
    "works",
    "but",
    "I",
    "worry",
    "about",
    "repairs",
    "time",
    "money",
    "family",
    "work",
    "week",
    "city",
    "bus",
    "bike",
    "people",
    "really",
    "think",
    "maybe",
    "never",
    "always",
    "good",
    "bad",
    "new",
    "old",
    "news",
    "town",
    "harbour",
    "sea",
    "boat",
    "fish",
    "market",
    "ship",
    "storm",
    "rumour",
    "stranger",
    "trust",
    "help",
    "today",
    "tomorrow",
    "home",
    "street",
]


def filler(chars: int, rng: random.Random) -> str:
    """About ``chars`` characters of plain words (no quotes, no line breaks)."""
    words: list[str] = []
    length = -1
    while length + 1 < chars:
        word = rng.choice(WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:chars].rstrip() if chars > 0 else ""


def typical_answer(schema: Any, fill: AnswerFill, rng: random.Random) -> Any:
    """A typical valid value of ``schema`` (the root of its ``$defs``)."""
    return _value(schema, schema, fill.default, fill, rng)


def _value(schema: Any, root: Any, spec: FieldFill, fill: AnswerFill, rng: random.Random) -> Any:
    if not isinstance(schema, dict):
        return None
    if "$ref" in schema:
        return _value(_resolve(schema["$ref"], root), root, spec, fill, rng)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            branch: Any = next((b for b in schema[key] if b.get("type") != "null"), {})
            return _value(branch, root, spec, fill, rng)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return rng.choice(schema["enum"])
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {
            name: _value(sub, root, fill.of(name), fill, rng)
            for name, sub in (schema.get("properties") or {}).items()
        }
    if kind == "array":
        low, high = schema.get("minItems", 0), schema.get("maxItems", spec.items)
        count = max(low, min(high, spec.items))
        return [_value(schema.get("items"), root, spec, fill, rng) for _ in range(count)]
    if kind == "boolean":
        return rng.random() < spec.true
    if kind in ("integer", "number"):
        low, high = schema.get("minimum", 0), schema.get("maximum", 100)
        return rng.randint(int(low), int(high)) if kind == "integer" else rng.uniform(low, high)
    if kind == "string":
        low = schema.get("minLength", 0)
        if low == 0 and rng.random() < spec.empty:
            return ""
        bound = schema.get("maxLength", UNBOUNDED_CHARS)
        text = filler(max(low, round(spec.fill * bound)), rng)
        return text + "x" * max(0, low - len(text))
    return None


def _resolve(ref: str, root: Any) -> Any:
    node = root
    for part in ref.removeprefix("#/").split("/"):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node


@dataclass(frozen=True, slots=True)
class KnownAnswers:
    """A model whose answers are known in advance (passed by tests and benchmarks).

    Attributes:
        reply: The model's reply text to a call.
        described: What these answers are, in words, stated beside the estimate.
        option_logprobs: The server scores option requests from token probabilities; if not,
            the gateway's k-sample fallback is what it costs.
    """

    reply: Callable[[BackendCall], str]
    described: str
    option_logprobs: bool = True


class DryBackend:
    """A backend that answers typically and counts tokens instead of calling a model.

    Args:
        model: The model name it reports (the run's).
        counter: Counts the prompt and answer tokens it reports.
        fill: The mode's typical answers on this model.
        known: Exact answers to give instead of typical ones.
    """

    name = "estimate"

    def __init__(
        self, model: str, counter: TokenCounter, fill: AnswerFill, known: KnownAnswers | None = None
    ):
        self.model = model
        self.counter = counter
        self.fill = fill
        self.known = known
        self.scored = 0  # option requests scored as from token log-probabilities
        # Option requests (the logprobs answer mode) cost one prompt and one token, as on the
        # local model and servers that give token probabilities; without this the gateway
        # estimates its k-sample fallback instead, which is what a server without them costs.
        scorer = self.score if known is None or known.option_logprobs else None
        self.capabilities = Capabilities(option_logprobs=scorer)

    async def score(self, call: BackendCall) -> BackendReply:
        """An option request: equal chances, the prompt's tokens and one generated token."""
        assert call.options is not None
        self.scored += 1
        distribution = OptionDistribution(dict.fromkeys(call.options, 1 / len(call.options)))
        usage = Usage(self.counter.prompt(call.messages), 1)
        return BackendReply(
            text=distribution.to_text(), usage=usage, endpoint="estimate", distribution=distribution
        )

    async def complete(self, call: BackendCall) -> BackendReply:
        rng = random.Random(call.seed)
        if self.known is not None:
            text = self.known.reply(call)
        elif call.schema is None:
            text = filler(round(self.fill.default.fill * UNBOUNDED_CHARS), rng)
        else:
            text = json.dumps(typical_answer(call.schema, self.fill, rng))
        usage = Usage(self.counter.prompt(call.messages), self.counter.text(text))
        return BackendReply(text=text, usage=usage, endpoint="estimate")

    async def aclose(self) -> None:
        """Nothing to release."""
