"""Option scoring on the embedded model: each option label's log-probability as the reply.

The chat is formatted with the model's own chat template (as ``create_chat_completion`` does)
and evaluated once; each label is then scored as the start of the assistant's reply, as written
and capitalised (the probabilities of both spellings added). When every label starts with a
token no other label starts with (likert points, "yes"/"no"/"unsure", most option lists), the
first token's log-probability decides, read from the prompt's one evaluation: no further model
call. Otherwise each label's score is the sum of its tokens' log-probabilities, read from
llama.cpp's logits after rewinding to the end of the prompt, each distinct start of a label
evaluated once. The prompt's evaluation itself reuses the longest prefix the instance
evaluated last, as llama.cpp's own completion does: the option prompts of the forecast answer
modes put what every agent shares first, so most of a survey's prompt is evaluated once.

Only the last position's logits are read (``llama_get_logits``), so the instance needs no
``logits_all`` and keeps serving ordinary generation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from personahub.llm.backends.local_queue import shared_prefix
from personahub.llm.types import Message


def _formatter(llama: Any) -> Any:
    """The instance's chat-template formatter, built once and kept on the instance."""
    formatter = getattr(llama, "_option_formatter", None)
    if formatter is None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ValueError("the model has no chat template to score options with")
        model = llama._model
        formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=model.token_get_text(llama.token_eos()),
            bos_token=model.token_get_text(llama.token_bos()),
        )
        llama._option_formatter = formatter
    return formatter


def prompt_tokens(llama: Any, messages: list[Message]) -> list[int]:
    """The tokens of ``messages`` with the assistant's turn opened, as generation sees them."""
    formatted = _formatter(llama)(messages=messages)
    tokens: list[int] = llama.tokenize(
        formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
    )
    return tokens


def _next_logprobs(llama: Any) -> np.ndarray:
    """Log-softmax of the logits after the last evaluated token."""
    logits = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(llama.n_vocab(),))
    shifted = logits.astype(np.float64) - float(logits.max())
    out: np.ndarray = shifted - np.log(np.exp(shifted).sum())
    return out


def _eval_prompt(llama: Any, tokens: list[int]) -> np.ndarray:
    """Evaluate ``tokens`` (reusing the evaluated prefix they share) and return the next
    token's log-probabilities."""
    common = shared_prefix(llama.input_ids[: llama.n_tokens], tokens)
    # At least the last token is evaluated again: its logits are what is read.
    llama.n_tokens = min(common, len(tokens) - 1)
    llama.eval(tokens[llama.n_tokens :])
    return _next_logprobs(llama)


def spellings(label: str) -> list[str]:
    """The ways a reply may start with ``label``: as written, and capitalised (a reply's
    first word usually is: "Maybe" rather than "maybe")."""
    capital = label[:1].upper() + label[1:]
    return [label] if capital == label else [label, capital]


def label_logprobs(
    llama: Any,
    messages: list[Message],
    labels: tuple[str, ...],
    tokens: list[int] | None = None,
) -> tuple[dict[str, float], int, int]:
    """Each label's log-probability as the reply to ``messages`` (whose
    :func:`prompt_tokens` are ``tokens``, where already known), summed over its
    :func:`spellings`.

    Returns:
        Label -> log-probability; the prompt's tokens; the labels' tokens scored.

    Raises:
        ValueError: The prompt and a label do not fit the context window, or the model has
            no chat template.
    """
    if not tokens:
        tokens = prompt_tokens(llama, messages)
    encoded = {
        label: [
            llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)
            for text in spellings(label)
        ]
        for label in labels
    }
    longest = max(len(e) for forms in encoded.values() for e in forms)
    if len(tokens) + longest > llama.n_ctx():
        raise ValueError(f"the prompt ({len(tokens)} tokens) does not fit the context window")
    first = _eval_prompt(llama, tokens)
    starts = {label: {forms[0] for forms in encoded[label]} for label in labels}
    if sum(len(t) for t in starts.values()) == len(set().union(*starts.values())):
        # Every label starts with tokens of its own: the first token decides the label, as in
        # the OpenAI-compatible path (one completion token's top logprobs). Reading on through
        # each label would cost a model evaluation per token for the same ranking.
        found = {
            label: float(np.logaddexp.reduce([first[t] for t in starts[label]])) for label in labels
        }
        return found, len(tokens), sum(len(t) for t in starts.values())
    after = _prefix_logprobs(llama, len(tokens), [f for forms in encoded.values() for f in forms])
    out: dict[str, float] = {}
    for label, forms in encoded.items():
        totals = [
            float(first[form[0]])
            + sum(float(after[tuple(form[:k])][form[k]]) for k in range(1, len(form)))
            for form in forms
        ]
        out[label] = float(np.logaddexp.reduce(totals))
    scored = sum(len(e) for forms in encoded.values() for e in forms)
    return out, len(tokens), scored


def _prefix_logprobs(
    llama: Any, end: int, forms: list[list[int]]
) -> dict[tuple[int, ...], np.ndarray]:
    """The next token's log-probabilities after the prompt (evaluated up to ``end``) and each
    proper prefix of ``forms`` (the labels' token lists), keyed by the prefix.

    Each prefix is evaluated once however many labels start with it ("too little" and "too
    much" share "too"), in sorted order so that a prefix extends the one evaluated before it
    wherever it can: only the tokens past what the two share are evaluated again.
    """
    prefixes = sorted({tuple(form[:k]) for form in forms for k in range(1, len(form))})
    out: dict[tuple[int, ...], np.ndarray] = {}
    for prefix in prefixes:
        common = shared_prefix(llama.input_ids[end : max(end, llama.n_tokens)], prefix[:-1])
        llama.n_tokens = end + common
        llama.eval(list(prefix[common:]))
        out[prefix] = _next_logprobs(llama)
    return out
