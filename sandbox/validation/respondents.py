"""Respondents of a survey spec, and the persona each becomes.

Individual data gives one respondent per row: the codebook turns its demographic codes into
words (its persona attributes), and its answers are kept as option codes. Count data has no
individuals: personas are drawn from the groups' shares (:func:`sample_from_counts`). The
persona text is a plain template (``sandbox/prompts/respondent_persona.j2``): the spec's first
sentence, then one ``Label: words.`` per known fact, nothing invented.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from personahub import prompts
from sandbox.validation.data import is_blank
from sandbox.validation.spec import SurveySpec, code_text

if TYPE_CHECKING:
    import pandas as pd

UNKNOWN = "unknown"
"""The group of a respondent whose value for a demographic is blank."""


@dataclass(frozen=True, slots=True)
class Respondent:
    """One (real or drawn) respondent.

    Attributes:
        id: Unique id (the data's id column, or the row number).
        attributes: Demographic column -> words; blank values are absent.
        answers: Question id -> option code, for scored answers only (blank, nonresponse and
            unlisted answers are absent).
        weight: Survey weight (1 without a weight column).
    """

    id: str
    attributes: dict[str, str]
    answers: dict[str, str] = field(default_factory=dict)
    weight: float = 1.0

    def group(self, column: str) -> str:
        return self.attributes.get(column, UNKNOWN)


def from_frame(spec: SurveySpec, frame: pd.DataFrame) -> list[Respondent]:
    """One respondent per row of individual data, in row order."""
    out = []
    for position, row in enumerate(frame.to_dict("records")):
        ident = row[spec.data.id_column] if spec.data.id_column else position + 1
        attributes = {}
        for d in spec.demographics:
            words = d.words(row[d.column])
            if words is not None:
                attributes[d.column] = words
        answers = {}
        for q in spec.questions:
            value = row[q.answer_column]
            if not is_blank(value) and code_text(value) in q.scored:
                answers[q.id] = code_text(value)
        weight = float(row[spec.data.weight]) if spec.data.weight else 1.0
        if is_blank(weight) or weight <= 0:
            continue  # a respondent with no weight stands for nobody
        out.append(Respondent(f"r{code_text(ident)}", attributes, answers, weight))
    return out


def group_shares(spec: SurveySpec, counts: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Demographic column -> group words -> share of people, from a counts table (the counts
    of the spec's first question, summed over its options)."""
    first = spec.questions[0].answer_column
    rows = counts[counts["question"].astype(str) == first]
    out: dict[str, dict[str, float]] = {}
    for d in spec.demographics:
        mine = rows[rows["group_attribute"].astype(str) == d.column]
        totals: dict[str, float] = {}
        for value, count in zip(mine["group_value"], mine["count"], strict=True):
            words = group_words(d, value)
            totals[words] = totals.get(words, 0.0) + float(count)
        whole = sum(totals.values()) or 1.0
        out[d.column] = {words: n / whole for words, n in totals.items()}
    return out


def group_words(demographic: Any, value: Any) -> str:
    """A counts table's group value as words: through the codebook when it has one."""
    words = demographic.words(value) if demographic.codes is not None else None
    return words or code_text(value)


def sample_from_counts(
    spec: SurveySpec, counts: pd.DataFrame, n: int, seed: int
) -> list[Respondent]:
    """``n`` personas drawn from the groups' marginal shares (each demographic drawn on its
    own: a counts table by one attribute at a time says nothing about their joint shares)."""
    rng = random.Random(seed)
    shares = group_shares(spec, counts)
    out = []
    for i in range(n):
        attributes = {}
        for column, share in shares.items():
            if share:
                attributes[column] = rng.choices(list(share), weights=list(share.values()))[0]
        out.append(Respondent(f"s{i + 1}", attributes))
    return out


def persona_text(spec: SurveySpec, respondent: Respondent) -> str:
    """The persona of a respondent: the spec's intro, then each known fact in words."""
    facts = [
        (d.label, respondent.attributes[d.column])
        for d in spec.demographics
        if d.column in respondent.attributes
    ]
    return prompts.render(
        "respondent_persona",
        package="sandbox",
        intro=spec.persona,
        facts=facts,
        ident=respondent.id,
    )


def persona_rows(spec: SurveySpec, respondents: list[Respondent]) -> list[dict[str, Any]]:
    """Persona file rows (``id``, ``persona``, ``attributes``: demographic column -> words, or
    ``unknown``) for a run's population."""
    return [
        {
            "id": r.id,
            "persona": persona_text(spec, r),
            "attributes": {d.column: r.group(d.column) for d in spec.demographics},
        }
        for r in respondents
    ]
