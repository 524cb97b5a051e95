"""The six synthesis tasks of the paper, each a structured output model and a prompt file.

Every string and list in these models is bounded and single-line: under the local backend's
grammar a small model then cannot loop until ``max_tokens`` or break the JSON with a raw
newline. A :class:`TaskSpec` ties a task to its template (``prompts/synthesis/<task>.j2``),
its output model, its token budget and :meth:`TaskSpec.text_of`, the flat text that
refusal checks, deduplication and diversity metrics read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from personahub.llm.seeds import plain_text


def _line(max_chars: int, min_chars: int = 0, description: str = "") -> Any:
    return Field(
        min_length=min_chars,
        max_length=max_chars,
        pattern=plain_text(max_chars, min_chars),
        description=description,
    )


ShortItem = Annotated[str, Field(min_length=2, max_length=100, pattern=plain_text(100, 2))]


class MathProblem(BaseModel):
    """A math problem written for (or by) the persona."""

    problem: str = _line(600, 10, "The problem statement, self-contained.")
    topic: str = _line(60, description="Area of mathematics, e.g. percentages.")
    difficulty: Literal["easy", "medium", "hard"]


class MathSolution(BaseModel):
    """One independent solution of a math problem (the 2-of-3 check solves it k times)."""

    reasoning: str = _line(600, description="Short working.")
    answer: str = _line(60, 1, "The final answer only: a number or a short expression.")


class ReasoningPuzzle(BaseModel):
    """A logical or spatial puzzle with its intended answer."""

    puzzle: str = _line(600, 10, "The puzzle, with everything needed to solve it.")
    kind: Literal["logical", "spatial"]
    answer: str = _line(200, 1, "The intended answer.")


class UserInstruction(BaseModel):
    """A request this persona would send to an AI assistant."""

    prompt: str = _line(400, 5, "The message, in the persona's own words.")


class KnowledgeText(BaseModel):
    """A knowledge-rich article written from the persona's expertise."""

    title: str = _line(100, 3)
    text: str = _line(1200, 40, "The article, one paragraph of facts and explanation.")


class NPCProfile(BaseModel):
    """A game character made from a persona, consistent with the game world."""

    name: str = _line(40, 2, "The character's name.")
    role: str = _line(60, 2, "Their role in the world, e.g. harbourmaster.")
    backstory: str = _line(400, 10)
    goals: list[ShortItem] = Field(min_length=1, max_length=3)
    speaking_style: str = _line(120, 3)
    player_interaction: str = _line(200, 3, "How they treat and help or hinder players.")


ParamType = Literal["string", "integer", "number", "boolean", "array", "object"]
TOOL_NAME_PATTERN = r"^[a-z][a-z0-9_]{2,40}$"


class ToolParameter(BaseModel):
    """One parameter of a tool, flattened so a grammar can enforce its shape."""

    name: str = Field(max_length=41, pattern=TOOL_NAME_PATTERN)
    type: ParamType
    description: str = _line(150, 3)
    required: bool


class ToolReturn(BaseModel):
    type: ParamType
    description: str = _line(150, 3)


class ToolSpec(BaseModel):
    """A function tool the persona would want; :mod:`verify` turns it into an OpenAI tool."""

    name: str = Field(max_length=41, pattern=TOOL_NAME_PATTERN)
    description: str = _line(200, 10)
    parameters: list[ToolParameter] = Field(max_length=5)
    returns: ToolReturn
    dependencies: list[ShortItem] = Field(
        max_length=3, description="External services or data the tool relies on."
    )


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """What one synthesis task asks for and how its answer is read.

    Attributes:
        name: Task name (also the template name under ``prompts/synthesis/``).
        output: The structured output model.
        max_tokens: Completion budget of one request.
        text_of: The output's flat text (dedup, refusal check, diversity).
        needs_world: The template describes a game world.
    """

    name: str
    output: type[BaseModel]
    max_tokens: int
    text_of: Callable[[dict[str, Any]], str]
    needs_world: bool = False

    @property
    def template(self) -> str:
        return f"synthesis/{self.name}"


def _npc_text(o: dict[str, Any]) -> str:
    parts = [o["name"], o["role"], o["backstory"], *o["goals"]]
    return " ".join([*parts, o["speaking_style"], o["player_interaction"]])


def _tool_text(o: dict[str, Any]) -> str:
    params = " ".join(f"{p['name']} {p['description']}" for p in o["parameters"])
    return f"{o['name']} {o['description']} {params} {o['returns']['description']}"


TASKS: dict[str, TaskSpec] = {
    "math": TaskSpec("math", MathProblem, 384, lambda o: o["problem"]),
    "reasoning": TaskSpec("reasoning", ReasoningPuzzle, 384, lambda o: o["puzzle"]),
    "instruction": TaskSpec("instruction", UserInstruction, 256, lambda o: o["prompt"]),
    "knowledge": TaskSpec("knowledge", KnowledgeText, 640, lambda o: f"{o['title']} {o['text']}"),
    "npc": TaskSpec("npc", NPCProfile, 512, _npc_text, needs_world=True),
    "tool": TaskSpec("tool", ToolSpec, 512, _tool_text),
}
MODES: tuple[str, ...] = ("zero-shot", "few-shot", "persona-few-shot")
SOLVE_MAX_TOKENS = 384


def task(name: str) -> TaskSpec:
    """The task called ``name``.

    Raises:
        ValueError: If there is no such task.
    """
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; choose from {', '.join(TASKS)}") from None
