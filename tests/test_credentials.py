"""Credentials in base URLs never leave the process: not in output, run databases, error
messages, usage keys or reports (issue 17, item 7)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from personahub.cli.app import app as personahub_app
from personahub.db.engine import safe_url
from personahub.urls import mask_url, url_secrets
from sandbox.report import write_report
from sandbox.run_options import RunOptions
from sandbox.rundb import RunDatabase
from sandbox.runner import start_run
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.runs import DEFAULT_SCENARIO, personas

SECRET = "sekrit-pass-9"
LIKERT = '  - {id: price_ok, type: likert, ask: "Is the price reasonable?", scale: 5}\n'


def test_mask_url_hides_only_the_password() -> None:
    assert mask_url(f"http://user:{SECRET}@host:8000/v1") == "http://user:***@host:8000/v1"
    assert mask_url("http://host:8000/v1") == "http://host:8000/v1"
    assert mask_url("not-a-url") == "not-a-url"
    # a token as the user of a model server's URL is a secret; a database's user name is not
    assert mask_url(f"https://{SECRET}@host/v1") == "https://***@host/v1"
    assert url_secrets([f"https://{SECRET}@host/v1"]) == [SECRET]
    assert mask_url("postgresql://alice@db/x") == "postgresql://alice@db/x"
    assert url_secrets(["http://u:p%40ss@h/v1", "http://h/v1"]) == ["p%40ss", "p@ss"]
    # The database URLs go through the same function.
    assert safe_url("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"


def _credentialed(server: FakeOpenAIServer) -> str:
    return server.base_url.replace("http://", f"http://user:{SECRET}@")


def test_a_run_through_a_credentialed_url_stores_and_shows_no_password(tmp_path: Path) -> None:
    (tmp_path / "people.jsonl").write_text("\n".join(json.dumps(p) for p in personas()) + "\n")
    scenario = tmp_path / "scenario.yaml"
    # No likert question: the report then needs no embedding model.
    scenario.write_text(DEFAULT_SCENARIO.replace(LIKERT, ""))
    with FakeOpenAIServer() as server:
        # A 400 fails one request with a message naming the endpoint; a 500 is retried.
        server.configure(queue=[{"status": 400}, {"status": 500}])
        url = _credentialed(server)
        cli = {"base_urls": [url], "backend": "openai", "cache": False, "concurrency": 1}
        cli |= {"backoff_base_s": 0.01, "max_retries": 2}
        options = RunOptions(out=tmp_path / "runs", steps=1, agents=4)
        outcome = start_run(scenario, options, cli, show_progress=False)
    report = write_report(outcome.database, outcome.run_id)
    database = RunDatabase(outcome.database)
    run = database.run()
    assert run is not None
    errors = [i.error_message for i in database.interactions(run.id) if i.error_message]
    assert errors and all(mask_url(url) in e for e in errors), errors
    assert list(run.usage["per_endpoint"]) == [mask_url(url)]
    assert run.llm_config["base_urls"] == [mask_url(url)]
    database.close()
    for path in [report, *outcome.run_dir.glob("run.db*")]:
        assert SECRET.encode() not in path.read_bytes(), path


def test_llm_check_prints_no_password() -> None:
    with FakeOpenAIServer() as server:
        result = CliRunner().invoke(
            personahub_app, ["llm", "check", "--base-url", _credentialed(server)]
        )
    assert result.exit_code == 0, result.output
    assert "user:***@" in result.output and SECRET not in result.output
