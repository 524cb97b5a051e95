"""The scenario of ``mode: forecast`` (the default): questions, interaction, segments, report.

Common sections are in :mod:`sandbox.scenario`; the union of all modes' scenarios is
assembled in :mod:`sandbox.modes`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from sandbox.scenario import Problem, ScenarioBase, Strict

QUESTION_ID = r"^[a-z][a-z0-9_]{0,31}$"
AnswerMode = Literal["sample", "logprobs", "verbalized"]
RESERVED_IDS = frozenset({"reaction", "post", "aware"})


class Interaction(Strict):
    """How agents act and influence each other."""

    word_of_mouth: bool = Field(True, description="Posts reach graph neighbours next step.")
    activation: float = Field(0.6, gt=0, le=1, description="Chance an aware agent acts in a step.")
    memory_size: int = Field(6, ge=1, le=50, description="Observations an agent keeps verbatim.")
    posts_seen: int = Field(4, ge=0, le=20, description="Neighbour posts shown per step, at most.")
    reactions: bool = Field(
        True,
        description="Ask each acting agent for a reaction in its own words (and a post). False "
        "for survey-style runs in the logprobs answer mode: a step is then the option requests "
        "alone, one short prompt per question.",
    )


class _QuestionBase(Strict):
    id: str = Field(pattern=QUESTION_ID)
    ask: str = Field(min_length=3, max_length=300)


class ChoiceQuestion(_QuestionBase):
    type: Literal["choice"]
    options: list[str] = Field(min_length=2, max_length=12)


def _option_problems(options: list[str], where: tuple[Any, ...]) -> list[Problem]:
    """Blank options, and options that differ only in case or spaces: to a person (and to the
    model) those are one answer, which the report would show as several rows."""
    out: list[Problem] = []
    seen: dict[str, int] = {}
    for j, option in enumerate(options):
        key = " ".join(option.split()).casefold()
        if not key:
            out.append(((*where, j), "expected an option with text, found a blank one", option))
        elif key in seen:
            first = options[seen[key]]
            message = f"options must be unique (ignoring case and spaces): same as {first!r}"
            out.append(((*where, j), message, option))
        else:
            seen[key] = j
    return out


def anchor_problems(question: LikertQuestion, where: tuple[Any, ...]) -> list[Problem]:
    """Anchor sets without one statement per scale point."""
    sets = question.anchor_sets
    expected = f"expected one statement per scale point ({question.scale})"
    return [
        ((*where, j) if len(sets) > 1 else where, f"{expected}, found {len(anchors)}", None)
        for j, anchors in enumerate(sets)
        if len(anchors) != question.scale
    ]


class LikertQuestion(_QuestionBase):
    type: Literal["likert"]
    scale: int = Field(5, ge=3, le=11)
    low: str = Field("strongly disagree", description="Meaning of 1.")
    high: str = Field("strongly agree", description="Meaning of the top of the scale.")
    anchors: list[str] | list[list[str]] | None = Field(
        None,
        description="One reference statement per scale point, for semantic-similarity rating; "
        "or a list of such sets, which the rating averages over.",
    )

    @property
    def anchor_sets(self) -> list[list[str]]:
        """The given anchors as a list of sets (empty when none are given)."""
        given = self.anchors or []
        if given and isinstance(given[0], list):
            return [list(s) for s in given]
        return [given] if given else []


class NumberQuestion(_QuestionBase):
    type: Literal["number"]
    # .nan or .inf would make every answer fail to parse, each interaction an error
    min: float = Field(allow_inf_nan=False)
    max: float = Field(allow_inf_nan=False)
    unit: str = ""


class TextQuestion(_QuestionBase):
    type: Literal["text"]
    max_length: int = Field(200, ge=10, le=1000)


Question = Annotated[
    ChoiceQuestion | LikertQuestion | NumberQuestion | TextQuestion, Field(discriminator="type")
]


class Report(Strict):
    """What the report shows."""

    transcripts_per_segment: int = Field(2, ge=0, le=20)


class ForecastScenario(ScenarioBase):
    """A forecast: agents answer ``questions`` as the timeline unfolds."""

    mode: Literal["forecast"] = "forecast"
    answer_mode: AnswerMode = Field(
        "sample",
        description="How agents answer choice and likert questions: `sample` (one sampled "
        "answer), `logprobs` (the model's probability of each option) or `verbalized` (the "
        "model states a probability per option); see sandbox.forecast.answer_modes.",
    )
    interaction: Interaction = Field(default_factory=Interaction)
    questions: list[Question] = Field(default_factory=list, max_length=12)
    metrics: list[str] | None = Field(None, description="Question ids to chart; default all.")
    segments: list[str] = Field(
        default_factory=list, description="Persona attributes (or `community`) to break down by."
    )
    report: Report = Field(default_factory=Report)

    def question(self, qid: str) -> Question:
        return next(q for q in self.questions if q.id == qid)

    @property
    def metric_ids(self) -> list[str]:
        if self.metrics is not None:
            return list(self.metrics)
        return [q.id for q in self.questions if q.type != "text"]

    @property
    def wants_communities(self) -> bool:
        return "community" in self.segments

    @property
    def segment_attributes(self) -> list[str]:
        return [key for key in self.segments if key != "community"]

    @property
    def options_only(self) -> bool:
        """Whether every question is answered by option requests (logprobs mode, choice and
        likert questions only): a step can then skip the structured reply."""
        return self.answer_mode == "logprobs" and all(
            isinstance(q, ChoiceQuestion | LikertQuestion) for q in self.questions
        )

    @property
    def step_reply(self) -> bool:
        """Whether an agent's step sends the structured reply (reaction, post, answers)."""
        return self.interaction.reactions or not self.options_only

    def problems(self) -> list[Problem]:
        out: list[Problem] = []
        # At least one of each, but an empty list is what a file without them loads as:
        # these are the messages users know, rather than the schema's "at least 1 item".
        if not self.questions:
            out.append((("questions",), "expected at least 1 question (forecast mode)", None))
        if not self.timeline:
            out.append((("timeline",), "expected at least 1 event (forecast mode)", None))
        ids = [q.id for q in self.questions]
        for i, q in enumerate(self.questions):
            if q.id in RESERVED_IDS:
                out.append((("questions", i, "id"), f"'{q.id}' is reserved; use another id", q.id))
            if ids.count(q.id) > 1:
                out.append((("questions", i, "id"), "question ids must be unique", q.id))
            if isinstance(q, ChoiceQuestion):
                out.extend(_option_problems(q.options, ("questions", i, "options")))
            if isinstance(q, LikertQuestion):
                out.extend(anchor_problems(q, ("questions", i, "anchors")))
            if isinstance(q, NumberQuestion) and q.max <= q.min:
                out.append((("questions", i, "max"), f"expected more than min={q.min:g}", q.max))
        if not self.interaction.reactions and not self.options_only:
            message = (
                "false needs answer_mode logprobs and only choice or likert questions (otherwise "
                "each step needs the agent's structured reply)"
            )
            out.append((("interaction", "reactions"), message, False))
        chartable = [q.id for q in self.questions if q.type != "text"]
        for i, metric in enumerate(self.metrics or []):
            if metric not in ids:
                out.append((("metrics", i), f"expected a question id ({', '.join(ids)})", metric))
            elif metric not in chartable:
                out.append((("metrics", i), "a text question cannot be charted", metric))
        return out + super().problems()

    def cut(self, data: dict[str, Any], steps: int) -> None:
        super().cut(data, steps)
        if not data["timeline"]:
            raise ValueError("no event happens before that step")


def describe(scenario: Any) -> list[tuple[str, str]]:
    """The lines ``sandbox validate`` adds for a forecast."""
    assert isinstance(scenario, ForecastScenario)
    lines = [
        ("questions", ", ".join(f"{q.id} ({q.type})" for q in scenario.questions)),
        ("segments", ", ".join(scenario.segments) or "-"),
    ]
    if scenario.answer_mode != "sample":
        lines.append(("answer mode", scenario.answer_mode))
    return lines
