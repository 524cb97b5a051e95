"""Persona-driven synthesis against the fixture server: tasks, modes, checks, resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from personahub.cli.app import app
from personahub.llm import LLMClient
from personahub.synthesis import TASKS, SynthesisError, SynthesisJob, prepare, read_rows, run_job
from personahub.synthesis.tasks import MODES
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.runs import request_schema
from tests.support.synth import PERSONAS, synthesis_responder, write_personas

runner = CliRunner()


def _job(tmp_path: Path, task: str, **fields: Any) -> SynthesisJob:
    people = write_personas(tmp_path / "people.jsonl", fields.pop("personas", PERSONAS[:4]))
    return SynthesisJob(task=task, personas=str(people), out=tmp_path / "out.jsonl", **fields)


async def _run(settings, job: SynthesisJob):
    prepared = prepare(job)
    async with LLMClient(settings) as client:
        report = await run_job(client, prepared)
    return report, read_rows(job.out)


def _generation_requests(server: FakeOpenAIServer) -> list[dict[str, Any]]:
    return [
        r for r in server.requests if "reasoning" not in (request_schema(r).get("properties") or {})
    ]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("task", list(TASKS))
async def test_every_task_and_mode_writes_valid_rows_with_provenance(
    task, mode, tmp_path, fake_server, llm_settings_factory
):
    fake_server.configure(responder=synthesis_responder())
    settings = llm_settings_factory(base_url=fake_server.base_url, cache=False)
    report, rows = await _run(settings, _job(tmp_path, task, mode=mode))

    assert report.kept == 4 and not report.dropped and not report.errors
    assert [r["persona_id"] for r in rows] == ["p0", "p1", "p2", "p3"]
    for row, persona in zip(rows, PERSONAS, strict=False):
        assert row["persona"] == persona
        assert (row["task"], row["mode"]) == (task, mode)
        assert row["template_version"].startswith(f"{task}-")
        assert row["model"] == settings.model_name and row["backend"] == "openai"
        assert set(row["params"]) == {"temperature", "max_tokens", "seed"}
        if task in ("math", "tool"):
            assert row["verification"]["passed"] is True
        else:  # Issue 18 item 6: no check is not a pass.
            assert row["verification"] == {"method": "none", "passed": None, "status": "unchecked"}
        TASKS[task].output.model_validate(
            {k: v for k, v in row["output"].items() if k != "openai_tool"}
        )
    if task == "math":
        assert rows[0]["verification"]["agreement"] == 3
    if task == "tool":
        assert rows[0]["output"]["openai_tool"]["type"] == "function"

    asked = _generation_requests(fake_server)
    assert len(asked) == 4
    turns = asked[0]["messages"]
    examples = [m for m in turns if m["role"] == "assistant"]
    example_asks = [m["content"] for m in turns[1:-1] if m["role"] == "user"]
    assert "Persona: A" in turns[-1]["content"]
    if mode == "zero-shot":
        assert not examples
    else:
        assert len(examples) == len(example_asks) >= 2
        carries_persona = ["Persona:" in ask for ask in example_asks]
        assert all(carries_persona) if mode == "persona-few-shot" else not any(carries_persona)


async def test_math_keeps_problems_only_when_two_of_three_agree(
    tmp_path, fake_server, llm_settings_factory
):
    scripts = {  # persona word -> answers of the three attempts
        "lighthouse": ["36", "36", "36"],
        "nurse": ["29", "29.0", "31"],
        "beekeeper": ["1", "2", "3"],
    }

    def solve(problem: str, attempt: int) -> str:
        word = next(w for w in scripts if w in problem.lower())
        return scripts[word][attempt]

    fake_server.configure(responder=synthesis_responder(solve))
    settings = llm_settings_factory(base_url=fake_server.base_url, cache=False)
    report, rows = await _run(settings, _job(tmp_path, "math", personas=PERSONAS[:3]))

    assert report.kept == 2 and report.dropped == {"unverified": 1}
    by_id = {r["persona_id"]: r["verification"] for r in rows}
    assert by_id["p0"]["agreement"] == 3 and by_id["p0"]["answer"] == "36"
    # Attempts run concurrently, so which of "29" and "29.0" came first varies.
    assert by_id["p1"]["agreement"] == 2 and by_id["p1"]["answer"] in ("29", "29.0")
    assert "p2" not in by_id


async def test_empty_refused_and_duplicate_outputs_are_dropped_and_counted(
    tmp_path, fake_server, llm_settings_factory
):
    def respond(body):
        content = str(body["messages"][-1]["content"])
        if "lighthouse" in content:
            return {"prompt": "I'm sorry, but I cannot help with that request."}
        if "nurse" in content:
            return {"prompt": "hi there"}
        if "beekeeper" in content or "railway" in content:
            return {"prompt": "Please write a weekly plan for my shop and my stall at markets."}
        return synthesis_responder()(body)

    fake_server.configure(responder=respond)
    settings = llm_settings_factory(base_url=fake_server.base_url, cache=False)
    report, rows = await _run(settings, _job(tmp_path, "instruction", personas=PERSONAS[:5]))

    assert report.dropped == {"refused": 1, "empty": 1, "duplicate": 1}
    assert [r["persona_id"] for r in rows] == ["p2", "p4"]


async def test_invalid_tool_specs_are_dropped(tmp_path, fake_server, llm_settings_factory):
    def respond(body):
        out = synthesis_responder()(body)
        if "nurse" in str(body["messages"][-1]["content"]):
            out["parameters"] = out["parameters"] * 2  # the same parameter twice
        return out

    fake_server.configure(responder=respond)
    settings = llm_settings_factory(base_url=fake_server.base_url, cache=False)
    report, rows = await _run(settings, _job(tmp_path, "tool", personas=PERSONAS[:3]))
    assert report.dropped == {"invalid_tool": 1}
    assert [r["persona_id"] for r in rows] == ["p0", "p2"]


async def test_a_budget_stop_then_rerun_gives_no_duplicate_and_no_gap(
    tmp_path, fake_server, llm_settings_factory
):
    fake_server.configure(responder=synthesis_responder())
    job = _job(tmp_path, "instruction", personas=PERSONAS, n=15)

    stopped = llm_settings_factory(
        base_url=fake_server.base_url, cache=False, max_calls=5, concurrency=2
    )
    first, rows = await _run(stopped, job)
    assert first.stopped == "budget exhausted"
    assert 0 < len(rows) < 15

    # A kill mid-write leaves half a journal line behind; the rerun must cope.
    journal = job.out.with_name(job.out.name + ".journal.jsonl")
    with journal.open("a") as fh:
        fh.write('{"item": "p9#1", "status": "ke')

    second, rows = await _run(llm_settings_factory(base_url=fake_server.base_url, cache=False), job)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) == 15
    expected = [f"p{i % 6}#{i // 6}" for i in range(15)]
    assert [f"{r['persona_id']}#{r['sample']}" for r in rows] == expected
    assert second.already_settled == len(ids) - second.kept
    # Nothing was generated twice: one generation request per item over both runs.
    assert len(_generation_requests(fake_server)) == 15


async def test_failed_requests_are_retried_by_the_next_run(
    tmp_path, fake_server, llm_settings_factory
):
    fake_server.configure(responder=synthesis_responder())
    fake_server.enqueue({"status": 500}, {"status": 500})  # item 0 exhausts its retries
    settings = llm_settings_factory(
        base_url=fake_server.base_url, cache=False, concurrency=1, max_retries=1
    )
    job = _job(tmp_path, "instruction", personas=PERSONAS[:3])
    first, rows = await _run(settings, job)
    assert sum(first.errors.values()) >= 1 and len(rows) < 3
    second, rows = await _run(settings, job)
    assert len(rows) == 3 and not second.errors


def test_a_rerun_with_other_options_is_refused(tmp_path):
    job = _job(tmp_path, "instruction")
    prepare(job)
    job.mode = "few-shot"
    with pytest.raises(SynthesisError, match=r"belongs to another run: .*mode"):
        prepare(job)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"task": "poetry"}, "unknown task 'poetry'"),
        ({"mode": "two-shot"}, "unknown mode"),
        ({"out_name": "out.csv"}, "--out must end in .jsonl or .parquet"),
        ({"examples": "missing.jsonl", "mode": "few-shot"}, "examples file not found"),
        ({"personas_path": "nobody.jsonl"}, "--personas: file not found"),
    ],
)
def test_bad_options_fail_before_any_call(tmp_path, fields, message):
    job = _job(tmp_path, fields.pop("task", "math"))
    if "out_name" in fields:
        job.out = tmp_path / fields.pop("out_name")
    if "personas_path" in fields:
        job.personas = str(tmp_path / fields.pop("personas_path"))
    if "examples" in fields:
        job.examples = tmp_path / fields.pop("examples")
    for key, value in fields.items():
        setattr(job, key, value)
    with pytest.raises(SynthesisError, match=message):
        prepare(job)


def test_examples_that_do_not_fit_the_task_name_the_line(tmp_path):
    bad = tmp_path / "ex.jsonl"
    bad.write_text(json.dumps({"persona": "x", "output": {"problem": "too short"}}) + "\n")
    job = _job(tmp_path, "math", mode="few-shot", examples=bad)
    with pytest.raises(SynthesisError, match=r"ex.jsonl:1: output\.problem"):
        prepare(job)


def test_cli_writes_parquet_and_json_that_datasets_loads(tmp_path, fake_server):
    datasets = pytest.importorskip("datasets")
    fake_server.configure(responder=synthesis_responder())
    people = write_personas(tmp_path / "people.jsonl", PERSONAS)
    for name in ("npc.parquet", "npc.jsonl"):
        result = runner.invoke(
            app,
            [
                "synthesize",
                "--task",
                "npc",
                "--personas",
                str(people),
                "--out",
                str(tmp_path / name),
                "--base-url",
                fake_server.base_url,
                "--no-cache",
                "--quiet",
            ],
        )
        assert result.exit_code == 0, result.output
        assert "rows in output" in result.output
    table = datasets.load_dataset(
        "parquet", data_files=str(tmp_path / "npc.parquet"), split="train"
    )
    assert table.num_rows == len(PERSONAS)
    assert json.loads(table[0]["output"])["role"] == "dock worker"
    lines = datasets.load_dataset("json", data_files=str(tmp_path / "npc.jsonl"), split="train")
    assert lines.num_rows == len(PERSONAS) and lines[0]["task"] == "npc"


def test_cli_errors_are_one_line(tmp_path):
    people = write_personas(tmp_path / "people.jsonl", PERSONAS[:2])
    result = runner.invoke(
        app,
        ["synthesize", "--task", "poems", "--personas", str(people), "--out", "x.jsonl"],
    )
    assert result.exit_code == 2
    assert "error: unknown task 'poems'" in result.output
    assert "Traceback" not in result.output


async def test_copies_of_the_worked_examples_are_dropped(
    tmp_path, fake_server, llm_settings_factory
):
    from personahub.synthesis.prompting import load_examples

    example = load_examples(TASKS["instruction"])[0].output

    def respond(body):
        if "lighthouse" in str(body["messages"][-1]["content"]):
            return example
        return synthesis_responder()(body)

    fake_server.configure(responder=respond)
    settings = llm_settings_factory(base_url=fake_server.base_url, cache=False)
    job = _job(tmp_path, "instruction", personas=PERSONAS[:3], mode="few-shot")
    report, rows = await _run(settings, job)
    assert report.dropped == {"copied_example": 1}
    assert [r["persona_id"] for r in rows] == ["p1", "p2"]
