"""What the fake server answers: the reply when nothing is scripted (:func:`unscripted_reply`,
the single source of those answers), the spread over a prompt's answer options, a reply's
``logprobs``, broken JSON, and the text of a request's messages."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from personahub.llm.options import hinted_labels
from personahub.llm.testing.schema_instances import generate_instance, vary_strings

BROKEN_JSON = '{"answer": "yes", '


def _content_text(content: Any) -> str:
    """The words of a message's ``content``."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        # Multi-part (vision-style) messages: only the text parts carry words.
        return "\n".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def as_content(value: Any) -> str:
    """A scripted answer as message content: strings as given, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def request_schema(response_format: Any) -> dict[str, Any] | None:
    """The JSON schema a request's ``response_format`` carries, or None."""
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
    elif kind == "json_object":
        # llama.cpp's extension: a schema riding along with json_object mode.
        schema = response_format.get("schema")
    else:
        return None
    return schema if isinstance(schema, dict) else None


def unscripted_reply(
    messages: Any, schema: dict[str, Any] | None, seed: Any = None, *, vary: bool = True
) -> str:
    """The server's reply when nothing is scripted, as an instruction-following model would
    answer (deterministic in the prompt and ``seed``, so a replayed request gets the same):

    * a JSON schema: a valid instance whose free-text strings are words picked by a hash of
      the prompt and the seed, so different prompts get different answers, and whose flags
      come from that hash too, true for about half of the prompts (``vary=False``, the
      ``vary_strings`` config off: the schema's one deterministic instance, every flag true);
    * a prompt that lists answer options (:func:`personahub.llm.options.hinted_labels`): the
      first token of the option :func:`option_spread` ranks first, the one token an option
      request asks for;
    * anything else: an echo of the last user turn.

    Tests that need to know the fixture's answers in advance (e.g. to measure the cost
    estimate's machinery) call this rather than copy it.
    """
    if schema is not None:
        instance = generate_instance(schema)
        if vary:
            instance = vary_strings(schema, schema, instance, _salt(messages, seed), flags=True)
        return json.dumps(instance)
    spread = option_spread(messages, seed)
    if spread is not None:
        return max(spread, key=lambda token: spread[token])
    return "echo: " + _last_user_text(messages)[:60]


def option_spread(messages: Any, seed: Any = None) -> dict[str, float] | None:
    """The first position's top tokens when the last user turn lists answer options: each
    option's first word, with a log-probability from a hash of the prompt, the seed and the
    option (options sharing a first word share its weight, as they share a real model's
    first token). None when the prompt lists no options."""
    labels = hinted_labels(_last_user_text(messages))
    if labels is None:
        return None
    salt = _salt(messages, seed)
    weights: dict[str, float] = {}
    for label in labels:
        token = (label.split() or [label])[0]
        digest = hashlib.sha256(f"{salt}|{label}".encode()).hexdigest()
        weights[token] = weights.get(token, 0.0) + 1 + int(digest[:4], 16) % 9
    total = sum(weights.values())
    return {token: math.log(weight / total) for token, weight in weights.items()}


def message_texts(messages: Any) -> list[str]:
    """The text of each message of a request body's ``messages``."""
    if not isinstance(messages, list):
        return []
    return [_content_text(m.get("content")) for m in messages if isinstance(m, dict)]


def _salt(messages: Any, seed: Any) -> str:
    return json.dumps([message_texts(messages), seed])


def _last_user_text(messages: Any) -> str:
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return _content_text(message.get("content"))
    return ""


def first_token_logprobs(content: str, top: dict[str, float] | None, count: int) -> dict[str, Any]:
    """OpenAI's ``logprobs`` of a reply, for its first token only: the first word of
    ``content`` (certain) unless ``top`` gives the first position's top tokens (scripted,
    or the spread over the options a prompt lists)."""
    words = content.split()
    first = words[0] if words else ""
    ranked = sorted((top or {first: 0.0}).items(), key=lambda item: -item[1])[: max(1, count)]
    entries = [{"token": t, "logprob": float(lp), "bytes": list(t.encode())} for t, lp in ranked]
    head = entries[0]
    return {"content": [{**head, "top_logprobs": entries}], "refusal": None}


def broken_json(schema: dict[str, Any] | None) -> str:
    """Truncate a schema instance mid-way, the way a model cut off by max_tokens does."""
    if schema is not None:
        text = json.dumps(generate_instance(schema))
        truncated = text[: len(text) // 2]
        try:
            json.loads(truncated)
        except ValueError:
            return truncated
    return BROKEN_JSON
