"""Answer modes of a forecast (``answer_mode``): how agents answer choice and likert questions.

* ``sample`` (the default): one sampled answer per agent and step, in the step's structured
  reply.
* ``logprobs``: the structured reply keeps the reaction, the post and the number and text
  questions; each choice or likert question is asked as one option request
  (``LLMRequest(options=...)``, the ``agent_option`` prompt): the model's probability of each
  option label, from token probabilities, or from sampled answers where a server has none.
  One extra request per choice/likert question per acting agent and step.
* ``verbalized``: the structured reply states, for each choice or likert question, the chance
  in percent of each option (one bounded integer per option); it is normalised after decoding.
  No extra request.

In the two distribution modes each agent carries a distribution per choice/likert question.
Its answer (what shares, plots and transcripts show) is drawn from that distribution with a
generator seeded by the run, step, agent and question, so a run replays exactly and resumes
the same. An interaction row's ``parsed`` then holds, besides the drawn answers, the
distributions under :data:`DISTRIBUTIONS_KEY`: ``{question id: {"method": "logprobs" |
"samples" | "verbalized", "samples": k, "probs": {option: probability}}}``. Likert options are
the scale points as strings, ``"1"``..``"scale"``.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from personahub import prompts
from personahub.llm import LLMRequest, LLMResult
from personahub.llm.options import choice_hint, normalise, scale_hint
from sandbox.forecast.scenario import (
    ChoiceQuestion,
    ForecastScenario,
    LikertQuestion,
    NumberQuestion,
    Question,
)

DISTRIBUTIONS_KEY = "_distributions"
"""Where an interaction row's ``parsed`` keeps the distributions (never a question id)."""

DistributionQuestion = ChoiceQuestion | LikertQuestion


def distribution_questions(scenario: ForecastScenario) -> list[DistributionQuestion]:
    """The questions answered with a distribution outside ``sample`` mode."""
    return [q for q in scenario.questions if isinstance(q, ChoiceQuestion | LikertQuestion)]


def option_labels(question: DistributionQuestion) -> tuple[str, ...]:
    """The option labels of ``question``: a choice's options, a likert's scale points."""
    if isinstance(question, ChoiceQuestion):
        return tuple(question.options)
    return tuple(str(point) for point in range(1, question.scale + 1))


def answer_value(question: DistributionQuestion, label: str) -> Any:
    """The answer an option label stands for (a likert answer is a whole number)."""
    return int(label) if isinstance(question, LikertQuestion) else label


def question_hint(question: Question) -> str:
    """How the answer to ``question`` must look, in words for the step prompt."""
    if isinstance(question, ChoiceQuestion):
        return "Answer with exactly one of: " + ", ".join(f'"{o}"' for o in question.options) + "."
    if isinstance(question, LikertQuestion):
        return f"A whole number from 1 ({question.low}) to {question.scale} ({question.high})."
    if isinstance(question, NumberQuestion):
        unit = f" {question.unit}" if question.unit else ""
        return f"A number from {question.min:g} to {question.max:g}{unit}."
    return "A short answer in your own words."


def in_step(question: Question, scenario: ForecastScenario) -> bool:
    """Whether the step's structured reply answers ``question`` (in ``logprobs`` mode the
    choice and likert questions are option requests of their own)."""
    return scenario.answer_mode != "logprobs" or not isinstance(
        question, ChoiceQuestion | LikertQuestion
    )


def step_questions(scenario: ForecastScenario) -> list[dict[str, str]]:
    """The questions of the step prompt, with how each answer must look."""
    verbalized = scenario.answer_mode == "verbalized"
    return [
        {
            "id": q.id,
            "ask": q.ask,
            "hint": verbalized_hint(q)
            if verbalized and isinstance(q, ChoiceQuestion | LikertQuestion)
            else question_hint(q),
        }
        for q in scenario.questions
        if in_step(q, scenario)
    ]


def option_hint(question: DistributionQuestion) -> str:
    """How the answer must look in an option request: bare labels, no quotes, so a
    server's first-token probabilities fall on the labels themselves."""
    if isinstance(question, ChoiceQuestion):
        return choice_hint(question.options)
    return scale_hint(question.scale, question.low, question.high)


def verbalized_hint(question: DistributionQuestion) -> str:
    """How a verbalized answer must look, for the step prompt."""
    keys = ", ".join(f'"{label}"' for label in option_labels(question))
    return (
        "For each possible answer, the chance in percent (0-100) that you would give it, as "
        f"an object with the keys {keys}."
    )


class _Percents(BaseModel):
    """Base of a verbalized answer: a percentage per option (keys are the labels)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @model_validator(mode="after")
    def _some_chance(self) -> _Percents:
        if not sum(self.percents().values()) > 0:
            raise ValueError("at least one option needs a chance above 0")
        return self

    def percents(self) -> dict[str, float]:
        """Option label -> stated percentage."""
        fields = type(self).model_fields
        return {info.alias or name: float(getattr(self, name)) for name, info in fields.items()}


def percent_model(question: DistributionQuestion) -> type[_Percents]:
    """The verbalized answer to ``question``: one integer 0..100 per option label (fields
    are named ``o0``, ``o1``, ... with the label as alias, as labels need not be names)."""
    fields: dict[str, Any] = {
        f"o{i}": (int, Field(ge=0, le=100, alias=label))
        for i, label in enumerate(option_labels(question))
    }
    return create_model(f"Percents_{question.id}", __base__=_Percents, **fields)


def option_request(
    persona: str, context: dict[str, Any], question: DistributionQuestion, seed: int
) -> LLMRequest[Any]:
    """The option request of ``question`` for one agent's step.

    The layout puts what agents share first and the persona after it: the system message is
    the role-play rules alone, and the user message is what the agent was shown, then its
    persona, then the question. A backend that reuses the prompt prefix it evaluated last (the
    embedded model) evaluates only the persona and the question of each respondent of a
    survey, and only the question of an agent's next question.

    Args:
        persona: The agent's persona text.
        context: What the step prompt shows the agent (summary, memory, new observations).
        question: The question.
        seed: The step's request seed.
    """
    system = prompts.render("agent_option_system", package="sandbox")
    user = prompts.render(
        "agent_option",
        package="sandbox",
        persona=persona,
        ask=question.ask,
        hint=option_hint(question),
        **context,
    )
    return LLMRequest(
        messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
        options=option_labels(question),
        seed=seed,
        tag="agent_option",
    )


@dataclass(frozen=True, slots=True)
class AgentTurn:
    """What one agent's requests of a step came to, as one interaction.

    Attributes:
        result: The structured reply, with the usage, latency and retries of every request
            of the turn summed in and the first error of any of them.
        parsed: What the interaction row records as ``parsed`` (None when the turn failed).
        answers: The agent's new answers per question id.
        distributions: The distribution per choice/likert question (empty in ``sample``).
    """

    result: LLMResult[Any]
    parsed: dict[str, Any] | None
    answers: dict[str, Any] = field(default_factory=dict)
    distributions: dict[str, dict[str, float]] = field(default_factory=dict)


def _merged(result: LLMResult[Any], others: list[LLMResult[Any]]) -> LLMResult[Any]:
    """``result`` with the costs of ``others`` added and the first error of all."""
    if not others:
        return result
    every = [result, *others]
    usage = result.usage
    for other in others:
        usage = usage + other.usage
    error = next((r.error for r in every if r.error is not None), None)
    return replace(
        result,
        usage=usage,
        latency_s=sum(r.latency_s for r in every),
        retries=sum(r.retries for r in every),
        cached=all(r.cached for r in every),
        error=error,
    )


def draw(probs: dict[str, float], seed: int, qid: str) -> str:
    """One option drawn from ``probs`` by a generator seeded with the step's request seed
    and the question id."""
    generator = random.Random(f"{seed}:{qid}")
    return generator.choices(list(probs), weights=list(probs.values()))[0]


def combine(
    scenario: ForecastScenario,
    result: LLMResult[Any] | None,
    option_results: list[LLMResult[Any]],
    seed: int,
) -> AgentTurn:
    """One agent's turn from its structured reply and (``logprobs`` mode) its option
    requests' replies, in :func:`distribution_questions` order.

    The turn fails as a whole when any of its requests failed: the agent keeps its answers,
    as after any failed request.
    """
    if result is None:  # option requests alone (``interaction.reactions: false``)
        merged = _merged(option_results[0], option_results[1:])
        if merged.error is not None:
            return AgentTurn(merged, None)
        parsed: dict[str, Any] = {}
    else:
        merged = _merged(result, option_results)
        if merged.error is not None or result.parsed is None:
            return AgentTurn(merged, None)
        parsed = result.raw_json() or {}
    # Only the logprobs mode can go without the structured reply (``step_reply``).
    structured = result.parsed if result is not None else None
    if scenario.answer_mode == "sample":
        answers = {q.id: getattr(structured, q.id) for q in scenario.questions}
        return AgentTurn(merged, parsed, answers)
    entries: dict[str, dict[str, Any]] = {}
    if scenario.answer_mode == "logprobs":
        for question, option in zip(distribution_questions(scenario), option_results, strict=True):
            assert option.distribution is not None
            found = option.distribution
            entries[question.id] = {
                "method": found.method,
                "samples": found.samples,
                "probs": found.probs,
            }
    else:
        for question in distribution_questions(scenario):
            stated: _Percents = getattr(structured, question.id)
            probs = normalise(stated.percents(), option_labels(question))
            assert probs is not None  # the answer model refuses all-zero chances
            entries[question.id] = {"method": "verbalized", "samples": 0, "probs": probs}
    distributions = {qid: entry["probs"] for qid, entry in entries.items()}
    drawn = {
        q.id: answer_value(q, draw(distributions[q.id], seed, q.id))
        for q in distribution_questions(scenario)
    }
    answers = {
        q.id: drawn[q.id] if q.id in drawn else getattr(structured, q.id)
        for q in scenario.questions
    }
    return AgentTurn(
        merged, {**parsed, **answers, DISTRIBUTIONS_KEY: entries}, answers, distributions
    )


def mode_note(scenario: ForecastScenario, parsed_rows: list[dict[str, Any]]) -> str:
    """How a run's choice and likert answers came about, for its report and summary.

    Args:
        scenario: The run's scenario.
        parsed_rows: The ``parsed`` of its successful interactions.
    """
    if scenario.answer_mode == "sample":
        return "sample (one sampled answer per agent and step)"
    sources: Counter[str] = Counter()
    for parsed in parsed_rows:
        for entry in (parsed.get(DISTRIBUTIONS_KEY) or {}).values():
            if entry["method"] == "samples":
                source = (
                    f"the shares of {entry['samples']} sampled answers (no token probabilities)"
                )
            elif entry["method"] == "logprobs":
                source = "token probabilities"
            else:
                source = "the model's stated chances"
            sources[source] += 1
    found = "; ".join(f"{source}: {n:,} answers" for source, n in sources.most_common())
    return (
        f"{scenario.answer_mode} (a distribution per agent and choice/likert question from "
        f"{found or 'no answers yet'}; shares count answers drawn from each agent's distribution)"
    )
