"""Issue 18 item 6: rejected items keep their content, and failing items stop being retried."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from personahub.cli.app import app
from personahub.llm import LLMClient
from personahub.synthesis import SynthesisJob, prepare, run_job
from tests.support.runs import request_schema
from tests.support.synth import PERSONAS, synthesis_responder, write_personas

runner = CliRunner()


def _rejects(out: Path) -> list[dict[str, Any]]:
    path = out.with_name(out.name + ".rejects.jsonl")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def test_dropped_items_are_written_with_their_content(
    tmp_path, fake_server, llm_settings_factory
):
    def respond(body):
        if "lighthouse" in str(body["messages"][-1]["content"]):
            return {"prompt": "I'm sorry, but I cannot help with that request."}
        return synthesis_responder()(body)

    fake_server.configure(responder=respond)
    people = write_personas(tmp_path / "people.jsonl", PERSONAS[:3])
    job = SynthesisJob(task="instruction", personas=str(people), out=tmp_path / "out.jsonl")
    async with LLMClient(llm_settings_factory(base_url=fake_server.base_url, cache=False)) as c:
        report = await run_job(c, prepare(job))

    assert report.dropped == {"refused": 1} and report.kept == 2
    [reject] = _rejects(job.out)
    assert reject["item"] == "p0#0" and reject["reason"] == "refused"
    assert (reject["task"], reject["mode"], reject["attempt"]) == ("instruction", "zero-shot", 1)
    assert reject["persona"] == PERSONAS[0]
    assert reject["content"] == {"prompt": "I'm sorry, but I cannot help with that request."}


def _math_cli(people: Path, out: Path, base_url: str, *extra: str):
    args = ["synthesize", "--task", "math", "--personas", str(people), "--out", str(out)]
    args += ["--base-url", base_url, "--no-cache", "--quiet", *extra]
    return runner.invoke(app, args)


def _lighthouse_generations(server) -> int:
    return sum(
        1
        for r in server.requests
        if "problem" in (request_schema(r).get("properties") or {})
        and "lighthouse" in str(r["messages"][-1]["content"])
    )


def test_an_item_that_always_fails_gives_up_after_max_attempts(tmp_path, fake_server):
    base = synthesis_responder()

    def respond(body):
        props = request_schema(body).get("properties") or {}
        if "reasoning" in props and "lighthouse" in str(body["messages"][-1]["content"]).lower():
            return "no idea at all"  # never a parseable answer: the check cannot run
        return base(body)

    fake_server.configure(responder=respond)
    people = write_personas(tmp_path / "people.jsonl", PERSONAS[:2])
    out = tmp_path / "math.jsonl"

    for run in (1, 2):
        result = _math_cli(people, out, fake_server.base_url)
        assert result.exit_code == 0, result.output
        assert "Run the same command again" in result.output, run
        assert "Nothing left to retry" not in result.output
    assert not out.with_name(out.name + ".rejects.jsonl").exists()

    third = _math_cli(people, out, fake_server.base_url)
    assert third.exit_code == 0, third.output
    assert "Run the same command again" not in third.output
    assert "Nothing left to retry: 1 item(s) gave up after 3 attempts" in third.output
    assert "math.jsonl.rejects.jsonl" in third.output
    [reject] = _rejects(out)
    assert (reject["item"], reject["reason"], reject["attempt"]) == ("p0#0", "gave_up", 3)
    assert reject["error"] and "lighthouse" in reject["content"]["problem"].lower()
    assert _lighthouse_generations(fake_server) == 3

    fourth = _math_cli(people, out, fake_server.base_url)
    assert fourth.exit_code == 0, fourth.output
    assert "Nothing left to retry: 1 item(s) gave up after 3 attempts" in fourth.output
    assert "Run the same command again" not in fourth.output
    assert _lighthouse_generations(fake_server) == 3  # no model call for the given-up item
    assert len(_rejects(out)) == 1
    assert [json.loads(line)["persona_id"] for line in out.read_text().splitlines()] == ["p1"]

    # A larger limit on a later run retries it once more.
    fifth = _math_cli(people, out, fake_server.base_url, "--max-attempts", "4")
    assert fifth.exit_code == 0, fifth.output
    assert _lighthouse_generations(fake_server) == 4
