"""The grammar-safe schema (:mod:`personahub.llm.grammar`): what llama.cpp builds grammars
from never holds a repetition it refuses (issue 17, item 6: ``synthesize --task knowledge``
segfaulted the embedded model), and it never rejects an answer the full schema accepts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel

from personahub.llm.grammar import GRAMMAR_MAX_SPAN, grammar_schema, loosen_pattern
from personahub.llm.seeds import plain_text
from personahub.llm.testing.schema_instances import generate_instance
from personahub.synthesis.tasks import TASKS
from sandbox.forecast.answers import response_model
from sandbox.forecast.scenario import ForecastScenario
from sandbox.npc.dialogue import Line
from sandbox.scenario_loader import load_scenario

ROOT = Path(__file__).resolve().parents[1]
_QUANTIFIER = re.compile(r"(?<!\\)\{(\d+)(?:(,)(\d*))?\}")


def _forecast_models() -> list[type[BaseModel]]:
    models: list[type[BaseModel]] = []
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        scenario = load_scenario(path)
        if isinstance(scenario, ForecastScenario):
            models.append(response_model(scenario))
    assert models, "no forecast scenario found"
    return models


MODELS: dict[str, type[BaseModel]] = {f"task:{name}": spec.output for name, spec in TASKS.items()}
MODELS["npc:Line"] = Line
MODELS.update({f"forecast:{i}": model for i, model in enumerate(_forecast_models())})


def _nodes(schema: Any) -> list[dict[str, Any]]:
    """Every schema object inside ``schema``, itself included."""
    if isinstance(schema, list):
        return [node for item in schema for node in _nodes(item)]
    if not isinstance(schema, dict):
        return []
    return [schema, *(node for value in schema.values() for node in _nodes(value))]


def _widest_span(schema: dict[str, Any]) -> int:
    widest = 0
    for node in _nodes(schema):
        for found in _QUANTIFIER.finditer(node.get("pattern", "") or ""):
            low = int(found.group(1))
            if found.group(2) is None:  # {m}
                high: int | None = low
            else:  # {m,} is open-ended: m copies and a star
                high = int(found.group(3)) if found.group(3) else None
            widest = max(widest, low, 0 if high is None else high - low)
        for low_key, high_key in (("minLength", "maxLength"), ("minItems", "maxItems")):
            if isinstance(node.get(high_key), int):
                widest = max(widest, node[high_key] - int(node.get(low_key, 0)))
    return widest


def test_the_knowledge_task_was_over_the_limit() -> None:
    """The schema that crashed llama.cpp is one the check below would have caught."""
    assert _widest_span(TASKS["knowledge"].output.model_json_schema()) > GRAMMAR_MAX_SPAN


@pytest.mark.parametrize("name", sorted(MODELS))
def test_grammar_schema_has_no_wide_repetition(name: str) -> None:
    schema = MODELS[name].model_json_schema()
    assert _widest_span(grammar_schema(schema)) <= GRAMMAR_MAX_SPAN


@pytest.mark.parametrize("name", sorted(MODELS))
def test_grammar_schema_accepts_what_the_schema_accepts(name: str) -> None:
    schema = MODELS[name].model_json_schema()
    loose = grammar_schema(schema)
    instance = generate_instance(schema)  # patterns aside: it does not follow them
    if jsonschema.Draft202012Validator(schema).is_valid(instance):
        jsonschema.validate(instance, loose)
    # Every string field at both ends of its length range, with and without its pattern.
    for node in _nodes(schema):
        if node.get("type") != "string" or "maxLength" not in node:
            continue
        twin = grammar_schema(node)
        for length in {node.get("minLength", 0), node["maxLength"]}:
            text = "a" * length
            if jsonschema.Draft202012Validator(node).is_valid(text):
                jsonschema.validate(text, twin)


def test_loosen_pattern_keeps_narrow_spans_and_opens_wide_ones() -> None:
    assert loosen_pattern(plain_text(240, 2)) == plain_text(240, 2)
    assert loosen_pattern(plain_text(1200, 40)) == r'^[^"\\\n\r\t]{40,}$'
    assert loosen_pattern("^a{900}$") == f"^a{{{GRAMMAR_MAX_SPAN},}}$"
    assert loosen_pattern(r"^\{5000,9000\}$") == r"^\{5000,9000\}$"  # literal braces


def test_grammar_schema_drops_wide_length_bounds_only() -> None:
    schema = {
        "type": "object",
        "properties": {
            "long": {"type": "string", "minLength": 10, "maxLength": 5000},
            "short": {"type": "string", "maxLength": 60},
            "many": {"type": "array", "items": {"type": "integer"}, "maxItems": 1000},
        },
    }
    loose = grammar_schema(schema)["properties"]
    assert loose["long"] == {"type": "string", "minLength": 10}
    assert loose["short"] == {"type": "string", "maxLength": 60}
    assert "maxItems" not in loose["many"]
    assert schema["properties"]["long"]["maxLength"] == 5000  # the original is untouched
