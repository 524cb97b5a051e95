"""The checks and metrics of synthesis: math agreement, tool validity, refusals, diversity."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from personahub.cli.app import app
from personahub.synthesis import verify
from personahub.synthesis.diversity import distinct_n, duplicate_rate, measure

runner = CliRunner()


@pytest.mark.parametrize(
    ("answers", "agreement", "answer", "passed"),
    [
        (["42", "42", "42"], 3, "42", True),
        (["1,200", "1200.0", "1150"], 2, "1,200", True),
        (["$15", "15 dollars", None], 2, "$15", True),
        (["3", "4", "5"], 1, "3", False),
        ([None, None, None], 0, None, False),
        (["1/4", "0.25", "x"], 2, "1/4", True),
        (["Paris", "paris.", "Lyon"], 2, "Paris", True),
    ],
)
def test_math_majority(answers, agreement, answer, passed):
    check = verify.majority(answers, need=2)
    assert (check.agreement, check.answer, check.passed) == (agreement, answer, passed)
    assert check.failed_attempts == answers.count(None)
    assert check.to_json()["passed"] is passed


def test_numbers_are_compared_by_value_but_years_are_not_merged():
    assert verify.normalize_answer("The answer is 7.50") == verify.normalize_answer("7.5")
    assert verify.normalize_answer("2024") != verify.normalize_answer("2025")


def _spec(**changes):
    spec = {
        "name": "get_tide_times",
        "description": "Tide times for a harbour.",
        "parameters": [
            {"name": "harbour", "type": "string", "description": "Harbour name", "required": True},
            {"name": "days", "type": "array", "description": "Days ahead", "required": False},
        ],
        "returns": {"type": "array", "description": "High and low tides"},
        "dependencies": [],
    }
    return {**spec, **changes}


def test_a_good_tool_is_a_valid_openai_tool():
    check = verify.tool_check(_spec())
    assert check == {"method": "openai-tool-schema", "passed": True, "problems": []}
    tool = verify.openai_tool(_spec())
    assert tool["function"]["parameters"]["required"] == ["harbour"]
    assert tool["function"]["parameters"]["properties"]["days"]["items"] == {}


def test_bad_tools_are_named():
    dup = _spec(parameters=_spec()["parameters"][:1] * 2)
    assert "duplicate parameter names" in verify.tool_check(dup)["problems"]
    assert any("function.name" in p for p in verify.tool_check(_spec(name="bad name!"))["problems"])
    broken = verify.openai_tool(_spec())
    broken["function"]["parameters"]["properties"]["harbour"]["type"] = "text"
    assert any("not a valid JSON Schema" in p for p in verify.tool_problems(broken))
    broken = verify.openai_tool(_spec())
    broken["function"]["parameters"]["required"] = ["port"]
    assert any("unknown parameters" in p for p in verify.tool_problems(broken))
    assert verify.tool_problems({"type": "function", "function": {"description": "x"}})


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   ok   ", "empty"),
        ("I'm sorry, but I cannot write that.", "refused"),
        ("As an AI language model I do not have a job.", "refused"),
        ("Tides rise twice a day. Some sailors say I cannot trust the almanac.", None),
    ],
)
def test_empty_and_refused(text, reason):
    assert verify.empty_or_refused(text) == reason


def test_distinct_n_and_duplicate_rate():
    assert distinct_n(["a b c", "a b d"], 1) == pytest.approx(4 / 6)
    assert distinct_n(["a b c", "a b d"], 2) == pytest.approx(3 / 4)
    same = "the harbour master counts the boats at dawn every day"
    assert duplicate_rate([same, same, "a completely different sentence about bread"]) == (
        pytest.approx(1 / 3)
    )


def test_similarity_uses_sampled_pairs():
    vectors = {"x": [1.0, 0.0], "y": [0.0, 1.0], "z": [1.0, 1.0]}

    def embed(texts):
        return np.array([vectors[t] for t in texts])

    result = measure(["x", "y", "z"], embed)
    assert result.pairs == 3
    assert result.mean_similarity == pytest.approx((0 + 2 * 0.70710678) / 3)
    assert measure(["x", "y", "z"], embed, max_pairs=2).pairs == 2


def test_diversity_cli_reports_outputs_and_personas(tmp_path):
    rows = [
        {"text": f"problem {i} about boats and tides", "persona": "A sailor"} for i in range(5)
    ] + [{"text": "a recipe for bread", "persona": "A baker"}]
    path = tmp_path / "out.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = runner.invoke(app, ["diversity", str(path), "--no-embeddings", "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert metrics["outputs"]["count"] == 6 and metrics["personas"]["count"] == 2
    assert metrics["outputs"]["mean_similarity"] is None
    missing = runner.invoke(app, ["diversity", str(tmp_path / "none.jsonl")])
    assert missing.exit_code == 2 and "file not found" in missing.output


def test_diversity_on_an_empty_file_says_it_is_empty(tmp_path):
    # Issue 18 item 6: one line saying the file is empty, and a non-zero exit.
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    result = runner.invoke(app, ["diversity", str(path), "--no-embeddings"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "is empty" in lines[0] and "error:" in lines[0]
