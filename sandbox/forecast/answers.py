"""The structured answer an agent gives each step, generated from the scenario's questions.

Field order is the order the model writes in: first its reaction in its own words, then the
answers, then what (if anything) it tells its contacts. Every string and list is bounded, so a
small model under a grammar cannot loop until max_tokens. A reaction must hold words: an
empty, whitespace or emoji-only one fails validation as ``empty_answer``, so the gateway
re-asks, and a final failure is recorded as an invalid answer with that reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model
from pydantic_core import PydanticCustomError

from personahub.llm.types import ErrorKind
from sandbox.forecast.answer_modes import in_step, percent_model
from sandbox.forecast.scenario import (
    ChoiceQuestion,
    ForecastScenario,
    LikertQuestion,
    NumberQuestion,
    Question,
    TextQuestion,
)

REACTION_MAX = 240
POST_MAX = 160


def has_words(text: str) -> str:
    """``text`` if it holds a letter or digit; else a validation error of the gateway kind
    ``empty_answer`` (an emoji or a blank is not a reaction anyone can read or rate)."""
    if not any(ch.isalnum() for ch in text):
        raise PydanticCustomError(
            ErrorKind.EMPTY_ANSWER.value, "expected a reaction in words, with a letter or digit"
        )
    return text


def _answer_field(question: Question) -> tuple[Any, Any]:
    if isinstance(question, ChoiceQuestion):
        return Literal[tuple(question.options)], Field(description=question.ask)
    if isinstance(question, LikertQuestion):
        return int, Field(
            ge=1,
            le=question.scale,
            description=f"{question.ask} 1 = {question.low}, {question.scale} = {question.high}",
        )
    if isinstance(question, NumberQuestion):
        # Whole-number bounds give an integer field, which grammar-constrained decoding can
        # keep inside the range; a float range can only be checked afterwards.
        whole = question.min.is_integer() and question.max.is_integer()
        low, high = (
            (int(question.min), int(question.max)) if whole else (question.min, question.max)
        )
        return (int if whole else float), Field(ge=low, le=high, description=question.ask)
    if isinstance(question, TextQuestion):
        return str, Field(max_length=question.max_length, description=question.ask)
    raise TypeError(f"unknown question type {question!r}")  # pragma: no cover


class AgentResponse(BaseModel):
    """The base of every scenario's generated response model."""

    model_config = ConfigDict(extra="ignore")

    if TYPE_CHECKING:
        # Declared for the type checker only: the generated model defines these fields
        # itself, so that the answers sit between them (the order the model writes in).
        reaction: str
        post: str


def response_model(scenario: ForecastScenario) -> type[AgentResponse]:
    """A pydantic model for one agent step of ``scenario``, in its answer mode: without the
    choice and likert questions in ``logprobs`` mode (they are option requests), with a
    percentage per option for them in ``verbalized`` mode."""
    fields: dict[str, Any] = {
        "reaction": (
            Annotated[str, AfterValidator(has_words)],
            Field(
                max_length=REACTION_MAX, description="Your reaction, first person, 1-2 sentences."
            ),
        )
    }
    verbalized = scenario.answer_mode == "verbalized"
    for question in scenario.questions:
        if not in_step(question, scenario):
            continue
        if verbalized and isinstance(question, ChoiceQuestion | LikertQuestion):
            fields[question.id] = (percent_model(question), Field(description=question.ask))
        else:
            fields[question.id] = _answer_field(question)
    fields["post"] = (
        str,
        Field(
            max_length=POST_MAX,
            description="What you tell your contacts about it, or an empty string.",
        ),
    )
    return create_model("AgentResponse", __base__=AgentResponse, **fields)
