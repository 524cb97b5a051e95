"""Option requests: a probability distribution over a fixed list of option labels.

An option request (``LLMRequest(options=...)``) asks how likely the model is to answer the
prompt with each label. Backends that see token probabilities score the labels themselves
(their ``option_logprobs`` capability: the local model from its logits, an OpenAI-compatible
server through ``logprobs``/``top_logprobs``). Where there are none, the answer is sampled
``k`` times as a one-field structured reply (``{"answer": <one of the labels>}``) and the
shares are the distribution: :func:`sample_distribution`, said as ``method="samples"``.

This module holds what every backend shares: normalising, mapping a server's top tokens onto
labels, and the sampling fallback; and how a prompt lists the labels (:func:`choice_hint`,
:func:`scale_hint`) beside the parser that reads them back (:func:`hinted_labels`), which the
test fixture server uses to answer an option request the way a model told the labels would.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace

from personahub.llm.backends.base import BackendCall, BackendReply
from personahub.llm.retry import TransportError
from personahub.llm.types import ErrorKind, OptionDistribution, Usage

SAMPLE_MAX_TOKENS = 32
"""Completion budget of one sampled answer: ``{"answer": "<label>"}`` and no more."""


def normalise(weights: Mapping[str, float], labels: Sequence[str]) -> dict[str, float] | None:
    """``weights`` scaled to sum to 1 over ``labels`` (missing labels weigh 0), in label
    order; None when nothing has weight."""
    values = [max(0.0, float(weights.get(label, 0.0))) for label in labels]
    total = sum(values)
    if not total > 0 or not math.isfinite(total):
        return None
    return {label: value / total for label, value in zip(labels, values, strict=True)}


def softmax(logprobs: Mapping[str, float], labels: Sequence[str]) -> dict[str, float]:
    """Label log-probabilities (e.g. summed over each label's tokens) as a distribution over
    the labels (renormalised: the model's mass on other continuations is left out)."""
    top = max(logprobs[label] for label in labels)
    found = normalise({label: math.exp(logprobs[label] - top) for label in labels}, labels)
    assert found is not None  # the largest label weighs exp(0) = 1
    return found


def _key(text: str) -> str:
    return " ".join(text.split()).casefold()


def match_top_tokens(
    top: Iterable[tuple[str, float]], labels: Sequence[str]
) -> dict[str, float] | None:
    """The distribution over ``labels`` from one position's top tokens and their logprobs.

    A token counts for a label when, case- and space-insensitively, it is the label or a
    prefix of it (``"Ye"`` for ``"yes"``). A token that is exactly one label counts for that
    label alone; one that only starts several (``"strongly"`` for ``"strongly agree"`` and
    ``"strongly disagree"``) is shared equally among them. None when no token matches.
    """
    keys = [_key(label) for label in labels]
    weights: dict[str, float] = defaultdict(float)
    for token, logprob in top:
        text = _key(token)
        if not text:
            continue
        exact = [label for label, key in zip(labels, keys, strict=True) if key == text]
        starts = exact or [
            label for label, key in zip(labels, keys, strict=True) if key.startswith(text)
        ]
        for label in starts:
            weights[label] += math.exp(logprob) / len(starts)
    return normalise(weights, labels)


_CHOICE_LEAD = "Answer with exactly one of: "
_SCALE = re.compile(r"Answer with a whole number from 1 \((.*?)\) to (\d+) \((.*)\)\.")


def choice_hint(labels: Sequence[str]) -> str:
    """How an option request's prompt lists its labels: bare, no quotes, so that a server's
    first-token probabilities fall on the labels themselves."""
    # Labels with commas in them ("yes, for Pinochet") would run together in a comma list.
    sep = "; " if any("," in label for label in labels) else ", "
    return _CHOICE_LEAD + sep.join(labels) + "."


def scale_hint(scale: int, low: str, high: str) -> str:
    """How an option request's prompt asks for a point of a 1..``scale`` scale (the labels
    ``"1"``..``str(scale)``), naming what its ends mean."""
    return f"Answer with a whole number from 1 ({low}) to {scale} ({high})."


def hinted_labels(prompt: str) -> tuple[str, ...] | None:
    """The option labels a prompt lists with :func:`choice_hint` or :func:`scale_hint` (its
    last such line), or None when it lists none.

    A choice line is read back by splitting on each separator the hint may use and keeping
    the split that formats back to the same line (semicolons first: a comma-separated list
    never formats back from a semicolon split of two or more labels). A list is ambiguous
    only when labels hold semicolons but no commas, as it is to the model reading it.
    """
    for line in reversed(prompt.splitlines()):
        line = line.strip()
        if line.startswith(_CHOICE_LEAD) and line.endswith("."):
            body = line[len(_CHOICE_LEAD) : -1]
            for sep in ("; ", ", "):
                labels = body.split(sep)
                if len(labels) > 1 and choice_hint(labels) == line:
                    return tuple(labels)
        elif found := _SCALE.fullmatch(line):
            return tuple(str(point) for point in range(1, int(found[2]) + 1))
    return None


def option_schema(labels: Sequence[str]) -> dict[str, object]:
    """The JSON schema of one sampled answer: ``{"answer": <one of labels>}``."""
    return {
        "type": "object",
        "properties": {"answer": {"type": "string", "enum": list(labels)}},
        "required": ["answer"],
    }


def _sampled_label(text: str, labels: Sequence[str]) -> str | None:
    """The label a sampled reply names, matched like the labels themselves; None if none."""
    try:
        answer = json.loads(text).get("answer")
    except (ValueError, AttributeError):
        return None
    wanted = _key(str(answer))
    return next((label for label in labels if _key(label) == wanted), None)


async def sample_distribution(
    complete: Callable[[BackendCall], Awaitable[BackendReply]], call: BackendCall, k: int
) -> BackendReply:
    """The distribution of ``k`` sampled answers to an option call.

    Each sample is a structured call through ``complete`` (the backend's own call) with its
    own seed (``seed + i``), all at once, so the fallback replays like any other seeded
    request. Replies that name no label are left out of the count.

    Raises:
        TransportError: A sample failed, or no sample named a label (``invalid_json``).
    """
    assert call.options is not None
    labels = call.options
    sample = replace(
        call,
        schema=option_schema(labels),
        schema_name="OptionAnswer",
        max_tokens=SAMPLE_MAX_TOKENS,
        options=None,
    )
    replies = await asyncio.gather(
        *(
            complete(replace(sample, seed=None if call.seed is None else call.seed + i))
            for i in range(k)
        )
    )
    counts = Counter(
        label for reply in replies if (label := _sampled_label(reply.text, labels)) is not None
    )
    usage = sum((reply.usage for reply in replies), Usage())
    endpoint = replies[-1].endpoint
    probs = normalise(counts, labels)
    if probs is None:
        raise TransportError(
            ErrorKind.INVALID_JSON,
            f"none of {k} sampled answers named an option",
            endpoint=endpoint,
        )
    distribution = OptionDistribution(probs, "samples", sum(counts.values()))
    return BackendReply(distribution.to_text(), usage, endpoint, distribution=distribution)
