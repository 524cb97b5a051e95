"""Checks on synthesized outputs: empty, refused, math self-consistency, tool validity.

Math uses the paper's check: solve the problem k times independently and keep it only when
at least two answers agree. Answers are compared after normalisation (case, spaces, units
words, thousands separators, and numbers compared by value), so "1,200" and "1200.0" agree.

A tool is valid when its OpenAI function-tool definition passes the SDK's own type
(``ChatCompletionFunctionToolParam``), its name matches OpenAI's pattern, and its
``parameters`` object is a valid JSON Schema (Draft 2020-12) whose ``required`` names exist.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import jsonschema
from openai.types.chat import ChatCompletionFunctionToolParam
from pydantic import TypeAdapter, ValidationError

MIN_CHARS = 10
OPENAI_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_REFUSAL = re.compile(
    r"^\W*(sorry\b|i'?m sorry|i am sorry|i apologi[sz]e|i can ?not|i can't|i won't|"
    r"i am unable|i'm unable|as an ai\b|as a language model|i'm not able to|i am not able to)",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)(e[-+]?\d+)?$", re.IGNORECASE)
_TOOL_ADAPTER: TypeAdapter[Any] = TypeAdapter(ChatCompletionFunctionToolParam)


def empty_or_refused(text: str) -> str | None:
    """``"empty"`` or ``"refused"`` when the output is not usable content, else None.

    A refusal counts only at the start: an article may quote "I cannot" later on.
    """
    stripped = " ".join(text.split())
    if len(stripped) < MIN_CHARS:
        return "empty"
    if _REFUSAL.search(stripped):
        return "refused"
    return None


def normalize_answer(answer: str) -> str:
    """A comparable form of a final answer: numbers by value, text lower-cased and trimmed."""
    text = answer.strip().lower()
    text = re.sub(r"^(the )?(final )?answer( is)?[:\s]*", "", text)
    text = text.strip(" .;:!$€£%")
    candidate = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    candidate = re.sub(
        r"\s*(dollars?|euros?|pounds?|units?|km/h|km|kg|m|cm|percent)$", "", candidate
    )
    candidate = candidate.strip(" .$€£%")
    if _NUMBER.match(candidate):
        value = float(candidate)
        if math.isfinite(value):
            rounded = round(value, 6)
            return str(int(rounded)) if rounded == int(rounded) else repr(rounded)
    if (fraction := re.fullmatch(r"(-?\d+)\s*/\s*(\d+)", candidate)) and int(fraction[2]):
        return normalize_answer(str(int(fraction[1]) / int(fraction[2])))
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class MathCheck:
    """The outcome of solving one problem k times.

    Attributes:
        answers: The raw final answers, one per successful attempt (failed attempts omitted).
        agreement: How many attempts gave the most common normalised answer.
        answer: That answer (raw text of its first occurrence), or None with no answers.
        k: Attempts made.
        need: Agreement needed to pass.
        failed_attempts: Attempts whose request failed.
    """

    answers: list[str]
    agreement: int
    answer: str | None
    k: int
    need: int
    failed_attempts: int = 0
    method: str = field(default="self-consistency")

    @property
    def passed(self) -> bool:
        return self.agreement >= self.need

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def majority(answers: Sequence[str | None], need: int = 2) -> MathCheck:
    """Agreement among independent answers (None marks a failed attempt).

    Ties between equally common answers go to the one given first.
    """
    given = [a for a in answers if a is not None and a.strip()]
    if not given:
        return MathCheck([], 0, None, len(answers), need, len(answers) - len(given))
    keys = [normalize_answer(a) for a in given]
    counts = Counter(keys)
    best = max(counts.values())
    winner = next(k for k in keys if counts[k] == best)
    raw = given[keys.index(winner)]
    return MathCheck(given, best, raw.strip(), len(answers), need, len(answers) - len(given))


def openai_tool(spec: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI function-tool definition of a :class:`~personahub.synthesis.tasks.ToolSpec`
    (as JSON data); ``returns`` and ``dependencies`` stay beside it in the output row."""
    properties = {
        p["name"]: {"type": p["type"], "description": p["description"]} for p in spec["parameters"]
    }
    for name, schema in properties.items():
        # JSON Schema wants the item type of an array; "any JSON value" is the honest default.
        if schema["type"] == "array":
            properties[name]["items"] = {}
    required = [p["name"] for p in spec["parameters"] if p["required"]]
    return {
        "type": "function",
        "function": {
            "name": spec["name"],
            "description": spec["description"],
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": False,
            },
        },
    }


def tool_problems(tool: dict[str, Any]) -> list[str]:
    """What makes ``tool`` an invalid OpenAI function tool (empty when it is valid)."""
    problems: list[str] = []
    try:
        _TOOL_ADAPTER.validate_python(tool, strict=True)
    except ValidationError as exc:
        error = exc.errors()[0]
        problems.append(f"{'.'.join(map(str, error['loc']))}: {error['msg']}")
        return problems
    function = tool["function"]
    if not OPENAI_NAME.match(function.get("name", "")):
        problems.append("function.name must match ^[a-zA-Z0-9_-]{1,64}$")
    if not str(function.get("description", "")).strip():
        problems.append("function.description is empty")
    parameters = function.get("parameters", {})
    try:
        jsonschema.Draft202012Validator.check_schema(parameters)
    except jsonschema.SchemaError as exc:
        problems.append(f"function.parameters is not a valid JSON Schema: {exc.message}")
        return problems
    if parameters.get("type") != "object":
        problems.append('function.parameters.type must be "object"')
    names = list(parameters.get("properties", {}))
    missing = [r for r in parameters.get("required", []) if r not in names]
    if missing:
        problems.append(f"function.parameters.required names unknown parameters: {missing}")
    return problems


def tool_check(spec: dict[str, Any]) -> dict[str, Any]:
    """Build the OpenAI tool for ``spec`` and validate it; duplicate parameter names fail."""
    names = [p["name"] for p in spec["parameters"]]
    tool = openai_tool(spec)
    problems = tool_problems(tool)
    if len(set(names)) != len(names):
        problems.append("duplicate parameter names")
    return {"method": "openai-tool-schema", "passed": not problems, "problems": problems}
