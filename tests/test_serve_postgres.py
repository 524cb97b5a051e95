"""``sandbox serve --database postgresql://...``: a run written to PostgreSQL is listed, its run
and agent pages render, an interview round trip stores a row there, its report is found in the
runs folder, the reading connections cannot write, and the URL's password reaches no page, no
JSON, no log line and no terminal output. Runs under ``scripts/postgres.sh`` (skips without)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select
from starlette.testclient import TestClient
from typer.testing import CliRunner

from sandbox.cli.app import app as cli
from sandbox.rundb import InterviewRow, RunDatabase
from sandbox.serve.app import ServeApp, build_app
from sandbox.serve.source import RunReader, RunSource
from tests.support.runs import make_run
from tests.test_serve import LOCAL, WRITE, fake_client


def test_serve_over_postgres(
    postgres_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    password = make_url(postgres_url).password
    assert password
    _db, run_id = make_run(tmp_path, database=postgres_url)
    caplog.set_level(logging.DEBUG)
    runs = tmp_path / "runs"  # where `sandbox run --database URL` writes the report
    source = RunSource(runs=runs, database=postgres_url)
    shown: list[str] = []
    with TestClient(build_app(ServeApp(source, fake_client)), base_url=LOCAL) as client:
        listed = client.get("/api/runs").json()
        page = client.get("/")
        unwritten = client.get(f"/runs/{run_id}/report")
        (runs / run_id).mkdir(parents=True)
        (runs / run_id / "report.html").write_text("<p>the report</p>", encoding="utf-8")
        relisted = client.get("/").text
        report = client.get(f"/runs/{run_id}/report")
        run_page = client.get(f"/runs/{run_id}")
        live = client.get(f"/api/runs/{run_id}/live")
        agent = client.get(f"/runs/{run_id}/agents/1")
        asked = client.post(
            f"/api/runs/{run_id}/agents/1/interview",
            json={"question": "Why did you say that?"},
            headers=WRITE,
        )
        after = client.get(f"/runs/{run_id}/agents/1")
        shown += [r.text for r in (page, unwritten, report, run_page, live, agent, asked, after)]
        shown += [str(listed), relisted]
    assert [(r["id"], r["status"], r["progress"], r["report"]) for r in listed["runs"]] == [
        (run_id, "completed", "3/3", False)
    ]
    assert page.status_code == 200 and "personahub:***@" in page.text
    assert "not written" in page.text and unwritten.status_code == 404
    assert f'href="/runs/{run_id}/report"' in relisted and report.text == "<p>the report</p>"
    assert run_page.status_code == 200 and live.status_code == 200
    assert live.json()["run"]["progress"] == "3/3" and live.json()["graph"]["dots"]
    assert live.json()["report"] is True and '<span id="report-link">' in run_page.text
    assert agent.status_code == 200 and agent.text.count('class="interaction') == 3
    assert asked.status_code == 200 and asked.json()["reply"] == "echo: Why did you say that?"
    assert "echo: Why did you say that?" in after.text  # the agent page lists its interviews
    database = RunDatabase(postgres_url, must_exist=True)
    with Session(database.engine) as session:
        rows = list(session.exec(select(InterviewRow)))
    database.close()
    assert [(r.run_id, r.kind, r.agent_id, r.turn) for r in rows] == [(run_id, "interview", 1, 0)]
    captured = capsys.readouterr()
    assert caplog.records  # the check below would pass vacuously with logging off
    for where in [*shown, caplog.text, captured.out, captured.err]:
        assert password not in where


def test_new_database_lists_no_runs_and_reader_cannot_write(postgres_url: str) -> None:
    source = RunSource(database=postgres_url)
    assert source.listing() == []  # no tables yet: not an "unreadable database"
    source.close()
    RunDatabase(postgres_url).close()  # an empty run database at the current revision
    reader = RunReader(postgres_url)
    try:
        with (
            pytest.raises(DBAPIError, match="read-only transaction"),
            reader.engine.begin() as connection,
        ):
            connection.execute(text("DELETE FROM interactions"))
        assert reader.outdated() is None and reader.all_runs() == []
    finally:
        reader.close()


def test_serve_command_masks_the_password(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[object] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: served.append(kwargs))
    result = CliRunner().invoke(cli, ["serve", "--database", postgres_url, "--port", "8799"])
    assert result.exit_code == 0, result.output
    assert served == [{"host": "127.0.0.1", "port": 8799, "log_level": "warning"}]
    password = make_url(postgres_url).password
    assert password and password not in result.output
    assert "personahub:***@" in result.output and "http://127.0.0.1:8799/" in result.output
