"""Quality filters for generated personas, applied before dedup and storage.

Each persona either passes or is dropped for the first reason that applies, in this order
(so the counts per reason add up to the number dropped):

``empty``
    Nothing left after cleaning.
``too_short`` / ``too_long``
    Fewer than ``min_words`` or more than ``max_words`` whitespace-separated words.
``refusal``
    The model declined or talked about itself ("As an AI", "I cannot", "language model",
    "I'm sorry", "an AI assistant", ...).
``boilerplate``
    Template or meta text instead of a description: "Here is a persona", placeholders in
    brackets, "lorem ipsum", "N/A", talk about "the text" / "this article" / "the person
    above", or phrases of our own prompts copied back ("a few words", "job or role").
``echo``
    Mostly copied from what it was derived from (the source text, or the parent persona):
    at least ``echo_overlap`` of the persona's word bigrams occur there.
``not_one_person``
    The model itself says the persona is a group, an organisation or a product/tool (the
    ``kind`` of a Text-to-Persona answer).
``group_or_thing``
    Headed by a group or a thing ("A team of robotics engineers", "An AI-powered text
    editor"): :func:`personahub.build.person_check.non_person_reason`.
``not_a_persona``
    No sign of a person (:func:`personahub.build.person_check.looks_like_person`): bare
    names ("Mike Smith") and things ("A mystery company") fail it.
``irrelevant``
    Set by the build, not here: MiniLM cosine to the source text below ``--min-relevance``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from personahub.build.person_check import looks_like_person, non_person_reason

REASONS: tuple[str, ...] = (
    "empty",
    "too_short",
    "too_long",
    "refusal",
    "boilerplate",
    "echo",
    "not_one_person",
    "group_or_thing",
    "not_a_persona",
    "irrelevant",
)

_REFUSAL = re.compile(
    r"\bas an? (?:ai|artificial intelligence|language model|assistant)\b"
    r"|\blanguage model\b"
    r"|\bi (?:cannot|can't|can not|won't|am unable|'m unable|am not able)\b"
    r"|\bi(?:'m| am) sorry\b|\bsorry, but\b|\bi apologi[sz]e\b"
    r"|\b(?:openai|chatgpt|chatbot)\b|\b(?:ai|virtual) (?:assistant|model|system)\b"
    r"|\bcannot (?:fulfil|fulfill|comply|assist|help|provide)\b"
    r"|\bi (?:do not|don't) have (?:enough )?(?:information|access|context)\b",
    re.IGNORECASE,
)
_BOILERPLATE = re.compile(
    r"\b(?:here is|here's|below is) (?:a|an|the|your|one)\b"
    r"|\bpersona(?: description)?\s*:"
    r"|\blorem ipsum\b|\bn/a\b|\bplaceholder\b|\bexample persona\b|\binsert (?:name|persona)\b"
    r"|[{}\[\]<>]"
    r"|\b(?:the|this|above) (?:text|passage|paragraph|article|excerpt|document)\b"
    # The instructions of our own prompts, copied back by a small model.
    r"|\b(?:the person above|this person|this one|the given person|the description above)\b"
    r"|\bclose relationship with\b|\bjob or role\b|\bstarting with\b|\ba few words\b"
    # "a single human being", as both persona prompts ask (benchmarks/persona_quality.py).
    r"|\bsingle human being\b"
    # Persona-to-Persona asks for "someone else with a different job or stage of life".
    r"|\bjob or stage of life\b"
    r"|\b\d+ to \d+ words\b",
    re.IGNORECASE,
)
_LABEL = re.compile(r"^\s*(?:persona|answer|output)\s*[:\-]\s*", re.IGNORECASE)


def clean_persona(text: str) -> str:
    """Collapse whitespace, strip wrapping quotes and a leading "Persona:" label."""
    text = " ".join(str(text).split())
    text = _LABEL.sub("", text)
    return text.strip(" \"'`“”‘’")


def _echo_words(text: str) -> list[str]:
    # Split hyphenated words too: "high school" copies "high-school".
    return re.findall(r"[a-z0-9]+", text.lower())


def _shingles(words: list[str], size: int = 2) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + size]) for i in range(max(0, len(words) - size + 1))}


@dataclass
class QualityFilter:
    """Drops personas that are empty, too short or long, refusals, boilerplate, echoes of
    their source, or not one person; counts drops by reason.

    Args:
        min_words: Fewest words a persona may have.
        max_words: Most words a persona may have.
        echo_overlap: Share of the persona's word bigrams found in its source at which it
            counts as copied.
    """

    min_words: int = 3
    max_words: int = 60
    echo_overlap: float = 0.7
    counts: Counter[str] = field(default_factory=Counter)

    def reason(self, text: str, context: str = "", kind: str | None = None) -> str | None:
        """Why ``text`` fails (a name from :data:`REASONS`), or None if it passes.

        ``kind`` is the model's own ``PersonaKind`` for the persona, where it gave one.
        """
        if not text.strip():
            return "empty"
        n_words = len(text.split())
        if n_words < self.min_words:
            return "too_short"
        if n_words > self.max_words:
            return "too_long"
        if _REFUSAL.search(text):
            return "refusal"
        if _BOILERPLATE.search(text):
            return "boilerplate"
        if context:
            shingles = _shingles(_echo_words(text))
            if len(shingles) >= 3:
                copied = len(shingles & _shingles(_echo_words(context))) / len(shingles)
                if copied >= self.echo_overlap:
                    return "echo"
        if kind is not None and kind != "one person":
            return "not_one_person"
        if non_person_reason(text) is not None:
            return "group_or_thing"
        if not looks_like_person(text):
            return "not_a_persona"
        return None

    def check(self, text: str, context: str = "", kind: str | None = None) -> str | None:
        """Like :meth:`reason`, and count the reason."""
        why = self.reason(text, context, kind)
        if why is not None:
            self.counts[why] += 1
        return why

    def keep(self, items: Iterable[tuple[str, str]]) -> list[bool]:
        """Check ``(text, context)`` pairs; True where the persona passes."""
        return [self.check(text, context) is None for text, context in items]
