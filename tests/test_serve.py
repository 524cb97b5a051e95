"""``sandbox serve`` without a browser: pages and JSON, the token and same-origin guards, the
read-only connections, interviews and surveys stored apart from the forecast, the
``sandbox interview``/``survey`` commands and ``export --role interview``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select
from starlette.testclient import TestClient
from typer.testing import CliRunner

from personahub.llm import LLMClient, load_settings
from sandbox.cli.app import app as cli
from sandbox.export.samples import collect
from sandbox.forecast.analysis import build_forecast
from sandbox.rundb import InterviewRow, RunDatabase
from sandbox.serve.app import ServeApp, build_app
from sandbox.serve.security import BindError, check_bind
from sandbox.serve.source import RunReader, RunSource
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.runs import make_run, responder_backend, set_run, varied_responder

LOCAL = "http://127.0.0.1"
WRITE = {"X-Sandbox": "1"}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return make_run(tmp_path_factory.mktemp("serve"))


def fake_client(_run: Any) -> LLMClient:
    settings = load_settings(backend="openai", model="fake-model", cache=False, max_retries=0)
    return LLMClient(settings, backend=responder_backend(varied_responder))


def client_for(db_path: Path, token: str | None = None) -> TestClient:
    source = RunSource(runs=db_path.parent.parent)
    return TestClient(build_app(ServeApp(source, fake_client), token=token), base_url=LOCAL)


def interviews(db_path: Path) -> list[InterviewRow]:
    database = RunDatabase(db_path, must_exist=True)
    try:
        with Session(database.engine) as session:
            return list(session.exec(select(InterviewRow).order_by(col(InterviewRow.id))))
    finally:
        database.close()


def test_runs_list_and_live_snapshot(run: tuple[Path, str]) -> None:
    db_path, run_id = run
    with client_for(db_path) as client:
        page = client.get("/")
        assert page.status_code == 200 and run_id in page.text
        assert "Content-Security-Policy" in page.headers
        listed = client.get("/api/runs").json()["runs"]
        assert [(r["id"], r["status"], r["progress"]) for r in listed] == [
            (run_id, "completed", "3/3")
        ]
        live = client.get(f"/api/runs/{run_id}/live").json()
    ids = {f["id"] for f in live["figures"]}
    assert {"kf-intent-yes", "kf-aware", "kf-agents"} <= ids
    assert live["shares"][0]["question"] == "intent"
    assert len(live["shares"][0]["series"][0]["points"]) == 3
    assert live["graph"]["note"] == "all 16 agents"
    assert all(d["c"] >= 0 for d in live["graph"]["dots"])  # everyone answered intent
    assert live["feed"] and live["failures"]["total"] == 0


def test_a_completed_run_is_awaited_only_while_its_report_can_come(tmp_path: Path) -> None:
    db_path, run_id = make_run(tmp_path)

    def flags() -> tuple[bool, bool]:
        live = client.get(f"/api/runs/{run_id}/live").json()
        return live["report"], live["report_pending"]

    with client_for(db_path) as client:
        assert flags() == (False, True)  # just completed: `sandbox run` writes it next
        set_run(db_path, run_id, updated=datetime.now(UTC) - timedelta(hours=1))
        assert flags() == (False, False)  # nothing more will change: the page stops asking
        (db_path.parent / "report.html").write_text("<p>report</p>", encoding="utf-8")
        assert flags() == (True, False)


def test_agent_page_shows_transcript(run: tuple[Path, str]) -> None:
    db_path, run_id = run
    with client_for(db_path) as client:
        page = client.get(f"/runs/{run_id}/agents/1")
        missing = client.get(f"/runs/{run_id}/agents/999")
    assert page.status_code == 200
    assert "Persona" in page.text and "Every interaction" in page.text
    assert page.text.count('class="interaction') == 3  # one per step
    assert missing.status_code == 404


def test_interview_and_survey_are_stored_apart_from_the_forecast(run: tuple[Path, str]) -> None:
    db_path, run_id = run
    database = RunDatabase(db_path, must_exist=True)
    before = build_forecast(database, run_id, live=True)
    n_interactions = len(database.interactions(run_id))
    with client_for(db_path) as client:
        url = f"/api/runs/{run_id}/agents/1/interview"
        first = client.post(url, json={"question": "Why did you say that?"}, headers=WRITE).json()
        again = client.post(
            url, json={"question": "And now?", "session": first["session"]}, headers=WRITE
        ).json()
        survey = client.post(
            f"/api/runs/{run_id}/survey",
            json={"question": "Recommend it?", "options": ["yes", "no"], "sample": 6},
            headers=WRITE,
        ).json()
    assert first["reply"].startswith("echo: ") and again["session"] == first["session"]
    assert survey["asked"] == 6 and sum(a["count"] for a in survey["answers"]) == 6
    rows = interviews(db_path)
    assert [(r.kind, r.turn) for r in rows[:2]] == [("interview", 0), ("interview", 1)]
    assert rows[1].messages[-1] == {"role": "user", "content": "And now?"}
    assert sum(r.kind == "survey" for r in rows) == 6
    after = build_forecast(database, run_id, live=True)
    assert len(database.interactions(run_id)) == n_interactions
    assert after.key_figures == before.key_figures
    exported = collect(database, run_id, "interview")
    assert len(exported) == 1 + 6
    assert exported[0].messages[-1]["role"] == "assistant"
    assert all(s.source == "interview" for s in exported)
    assert not [s for s in collect(database, run_id, "agent") if s.source == "interview"]
    database.close()


def test_writes_need_the_same_origin_header(run: tuple[Path, str]) -> None:
    db_path, run_id = run
    url = f"/api/runs/{run_id}/agents/1/interview"
    with client_for(db_path) as client:
        plain = client.post(url, json={"question": "hi"})
        foreign = client.post(
            url, json={"question": "hi"}, headers={**WRITE, "Origin": "http://evil.example"}
        )
        rebinding = client.get("/", headers={"Host": "evil.example"})
    assert (plain.status_code, foreign.status_code, rebinding.status_code) == (403, 403, 403)


def test_token_is_needed_once_then_kept_in_a_cookie(run: tuple[Path, str]) -> None:
    db_path, _run_id = run
    with client_for(db_path, token="s3cret") as client:
        assert client.get("/").status_code == 401
        assert client.get("/?token=wrong").status_code == 401
        entry = client.get("/?token=s3cret", follow_redirects=False)
        assert entry.status_code == 303 and "token" not in entry.headers["location"]
        assert client.get("/").status_code == 200  # the cookie
    with client_for(db_path, token="s3cret") as client:
        bearer = client.get("/api/runs", headers={"Authorization": "Bearer s3cret"})
    assert bearer.status_code == 200


def test_non_local_bind_without_token_is_refused() -> None:
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("0.0.0.0", "tok")
    with pytest.raises(BindError, match="without an access token"):
        check_bind("0.0.0.0", None)
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 2  # the input errors' exit status (personahub.cli.common.fail)
    assert "without an access token" in result.output


def test_reader_cannot_write(run: tuple[Path, str]) -> None:
    reader = RunReader(run[0])
    try:
        with (
            pytest.raises(OperationalError, match=r"readonly|read-only|query_only"),
            reader.engine.begin() as connection,
        ):
            connection.execute(text("DELETE FROM interactions"))
        assert reader.interactions(run[1])
    finally:
        reader.close()


def test_interview_and_survey_commands(tmp_path: Path) -> None:
    db_path, run_id = make_run(tmp_path)
    with FakeOpenAIServer() as server:
        flags = ["--base-url", server.base_url, "--no-cache", "--out", str(tmp_path / "runs")]
        asked = CliRunner().invoke(
            cli, ["interview", run_id, "2", "--ask", "What do you think now?", *flags]
        )
        repl = CliRunner().invoke(
            cli, ["interview", str(db_path), "2", *flags], input="First?\nSecond?\n\n"
        )
        survey = CliRunner().invoke(
            cli, ["survey", run_id, "Keep it?", "--option", "yes", "--option", "no",
                  "--sample", "5", *flags],
        )  # fmt: skip
        export = CliRunner().invoke(
            cli, ["export", str(db_path), "--role", "interview", "--format", "openai",
                  "--no-dedup", "--out", str(tmp_path / "iv.jsonl")],
        )  # fmt: skip
    assert asked.exit_code == 0, asked.output
    assert "agent 2> echo: What do you think now?" in asked.output
    assert repl.exit_code == 0, repl.output
    assert "echo: First?" in repl.output and "echo: Second?" in repl.output
    assert survey.exit_code == 0, survey.output
    assert "asked 5 agents, 5 answered" in survey.output
    rows = interviews(db_path)
    assert [(r.kind, r.turn) for r in rows[:3]] == [
        ("interview", 0),
        ("interview", 0),
        ("interview", 1),
    ]
    assert rows[2].session == rows[1].session != rows[0].session
    assert export.exit_code == 0, export.output
    lines = (tmp_path / "iv.jsonl").read_text().splitlines()
    assert len(lines) == 2 + 5  # two interviews, five survey answers
    assert json.loads(lines[1])["messages"][-1]["content"] == "echo: Second?"


def test_serve_command_names_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: None)
    monkeypatch.chdir(tmp_path)
    missing = CliRunner().invoke(cli, ["serve"])
    (tmp_path / "runs").mkdir()
    there = CliRunner().invoke(cli, ["serve", "--port", "9001"])
    assert missing.exit_code == there.exit_code == 0
    folder = str(tmp_path.resolve() / "runs")
    assert f"serving {folder} at http://127.0.0.1:8765/" in missing.output
    assert f"note: {folder} does not exist yet" in missing.output
    assert f"serving {folder} at http://127.0.0.1:9001/" in there.output
    assert "note:" not in there.output
