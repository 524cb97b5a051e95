"""Anchor statements for semantic-similarity rating: one first-person sentence per scale point.

SSR is only as good as its anchors (Maier et al. 2025, arXiv 2510.08338): a reaction is rated by
how close it sits to each point's statement, so an ungrammatical or lopsided statement skews the
whole distribution. The paper therefore averages the rating over several anchor sets. Here:

* a question's own ``anchors`` (one set, or a list of sets) are used as written;
* otherwise, for the usual label pairs (agree/disagree, likely/unlikely, would buy/would not buy,
  satisfied/dissatisfied, good/bad) :data:`PAIRS` holds graded phrases and three sentence frames,
  which give three grammatical sets for any scale size;
* any other pair falls back to sentences that quote the labels ("My answer is much closer to
  "low" than to "high"."), grammatical whatever the labels are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sandbox.forecast.scenario import LikertQuestion


@dataclass(frozen=True, slots=True)
class LabelPair:
    """Graded phrases for one kind of scale and the sentence frames they go into.

    Attributes:
        low: Recognises the label of point 1 (a regular expression, no case).
        high: Recognises the label of the top point.
        negative: Phrases for the low side, from the extreme towards the middle; a scale of k
            points uses the first ``(k - 1) // 2`` (the first two on a 5-point scale).
        positive: The same for the high side.
        neutral: The midpoint of an odd scale.
        frames: Sentence frames with ``{}`` for a phrase; each frame gives one anchor set.
    """

    low: str
    high: str
    negative: tuple[str, ...]
    positive: tuple[str, ...]
    neutral: str
    frames: tuple[str, ...]


PAIRS: tuple[LabelPair, ...] = (
    LabelPair(
        low=r"\bdisagree\b",
        high=r"\bagree\b",
        negative=("strongly disagree", "disagree", "somewhat disagree", "slightly disagree",
                  "mildly disagree"),
        positive=("strongly agree", "agree", "somewhat agree", "slightly agree", "mildly agree"),
        neutral="neither agree nor disagree",
        frames=("I {}.", "I {} with this.", "Thinking it over, I {}."),
    ),
    LabelPair(
        low=r"\bunlikely\b|\bnot (at all )?likely\b",
        high=r"\blikely\b",
        negative=("very unlikely", "unlikely", "somewhat unlikely", "slightly unlikely",
                  "a little unlikely"),
        positive=("very likely", "likely", "somewhat likely", "slightly likely",
                  "a little likely"),
        neutral="neither likely nor unlikely",
        frames=("It is {} that I would do this.", "For me, this is {}.",
                "I would say it is {} for me."),
    ),
    LabelPair(
        low=r"\bnot buy\b|\bwouldn't buy\b|\bnever buy\b",
        high=r"\bbuy\b",
        negative=("definitely would not buy it", "probably would not buy it",
                  "doubt that I would buy it", "might not buy it", "lean towards not buying it"),
        positive=("definitely would buy it", "probably would buy it",
                  "think that I would buy it", "might buy it", "lean towards buying it"),
        neutral="might or might not buy it",
        frames=("I {}.", "Honestly, I {}.", "If it were in the shops today, I {}."),
    ),
    LabelPair(
        low=r"\bdissatisfied\b|\bunsatisfied\b|\bnot (at all )?satisfied\b",
        high=r"\bsatisfied\b",
        negative=("very dissatisfied", "dissatisfied", "somewhat dissatisfied",
                  "slightly dissatisfied", "a little dissatisfied"),
        positive=("very satisfied", "satisfied", "somewhat satisfied", "slightly satisfied",
                  "a little satisfied"),
        neutral="neither satisfied nor dissatisfied",
        frames=("I am {}.", "I am {} with it.", "All in all, I feel {}."),
    ),
    LabelPair(
        low=r"\bbad\b|\bpoor\b",
        high=r"\bgood\b|\bexcellent\b",
        negative=("very bad", "bad", "fairly bad", "somewhat bad", "slightly bad"),
        positive=("very good", "good", "fairly good", "somewhat good", "slightly good"),
        neutral="neither good nor bad",
        frames=("I think it is {}.", "For me, it is {}.", "In my view, it is {}."),
    ),
)  # fmt: skip
"""The label pairs with grammatical default anchors, tried in order."""

_GRADES = ("much closer to", "closer to", "a little closer to", "slightly closer to",
           "just a touch closer to")  # fmt: skip
"""The fallback's grades on each side, from the extreme towards the middle."""


def _pair_of(question: LikertQuestion) -> LabelPair | None:
    """The known label pair of ``low``/``high``, or None (the generic fallback)."""
    for pair in PAIRS:
        low_ok = re.search(pair.low, question.low, re.IGNORECASE)
        high_ok = re.search(pair.high, question.high, re.IGNORECASE)
        # The high pattern must not be read in the low label (a reversed scale is unknown).
        if low_ok and high_ok and not re.search(pair.low, question.high, re.IGNORECASE):
            return pair
    return None


def _points(k: int, negative: list[str], neutral: str | None, positive: list[str]) -> list[str]:
    """k points from ``(k - 1) // 2`` phrases per side (extreme first) and an odd midpoint."""
    side = k // 2
    middle = [neutral] if k % 2 and neutral is not None else []
    return negative[:side] + middle + positive[:side][::-1]


def anchor_sets(question: LikertQuestion) -> list[list[str]]:
    """The anchor sets SSR averages over for ``question``, each lowest point first.

    Args:
        question: The likert question; its ``anchors`` when given, else ``scale``, ``low`` and
            ``high``.

    Returns:
        One or more lists of ``question.scale`` statements.
    """
    if question.anchor_sets:
        return question.anchor_sets
    k = question.scale
    pair = _pair_of(question)
    if pair is not None:
        points = _points(k, list(pair.negative), pair.neutral, list(pair.positive))
        return [[frame.format(p) for p in points] for frame in pair.frames]
    low, high = question.low, question.high
    negative = [f'My answer is "{low}".'] + [
        f'My answer is {g} "{low}" than to "{high}".' for g in _GRADES
    ]
    positive = [f'My answer is "{high}".'] + [
        f'My answer is {g} "{high}" than to "{low}".' for g in _GRADES
    ]
    neutral = f'My answer is halfway between "{low}" and "{high}".'
    return [_points(k, negative, neutral, positive)]


def generic_anchors(question: LikertQuestion) -> list[str]:
    """The first default anchor set of ``question`` (its own anchors ignored)."""
    return anchor_sets(question.model_copy(update={"anchors": None}))[0]
