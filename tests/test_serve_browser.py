"""``sandbox serve`` in real headless Chromium: a run started in a subprocess against the
fixture server (with latency) moves the open run page without a reload; the agent page shows
its transcript and an interview round trip stores a row; hostile personas and replies render
as text with no console errors; the open runs list shows a run started after it opened, and
its steps, without a reload (over SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from sandbox.rundb import AgentRow, InterviewRow, RunDatabase
from sandbox.serve.app import ServeApp, build_app
from sandbox.serve.source import RunSource
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.runs import DEFAULT_SCENARIO, make_run, personas, set_run, varied_responder
from tests.support.serve import serving
from tests.test_report_browser import HOSTILE, driver, hostile_responder, severe

__all__ = ["driver"]  # the module-scoped Chromium fixture of the report test
ROOT = Path(__file__).resolve().parent.parent


def wait_for(check: Callable[[], Any], seconds: float = 60, what: str = "") -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def runs_of(base: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{base}/api/runs") as response:
        return list(json.load(response)["runs"])


def loaded(browser: Any) -> bool:
    """Whether the run page has drawn a snapshot."""
    return bool(browser.execute_script("return document.getElementById('run').dataset.loaded"))


def text_of(browser: Any, css: str) -> str:
    return str(browser.execute_script(f"return document.querySelector('{css}').textContent"))


def report_linked(browser: Any) -> bool:
    """Whether the run page shows its link to the written report."""
    return bool(browser.execute_script("return !document.getElementById('report-link').hidden"))


@pytest.mark.browser
def test_live_run_page_agent_page_and_interview(driver: Any, tmp_path: Path) -> None:
    (tmp_path / "people.jsonl").write_text(
        "\n".join(json.dumps(p) for p in personas()) + "\n", encoding="utf-8"
    )
    scenario = tmp_path / "live.yaml"
    scenario.write_text(DEFAULT_SCENARIO.replace("steps: 3", "steps: 4"), encoding="utf-8")
    runs = tmp_path / "runs"
    runs.mkdir()
    with (
        FakeOpenAIServer(latency_ms=300) as model,
        serving(build_app(ServeApp(RunSource(runs=runs), poll_ms=250))) as base,
    ):
        run = subprocess.Popen(
            [sys.executable, "-m", "sandbox.cli", "run", str(scenario), "--base-url",
             model.base_url, "--model", "fake-model", "--no-cache", "--concurrency", "4",
             "--out", str(runs), "--quiet"],
            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            listed = wait_for(lambda: runs_of(base), what="the run to appear")
            run_id = listed[0]["id"]
            driver.get_log("browser")
            driver.get(f"{base}/runs/{run_id}")
            driver.execute_script("window.sameDocument = 42")
            wait_for(lambda: loaded(driver), what="the first snapshot")
            step = text_of(driver, "#step")
            shares = text_of(driver, "#shares")
            assert int(step) < 4, "the run finished before the page opened"
            assert not report_linked(driver)
            wait_for(lambda: text_of(driver, "#step") != step, what="the step counter to move")
            wait_for(lambda: text_of(driver, "#shares") != shares, what="the shares to change")
            wait_for(lambda: text_of(driver, "#status") == "completed", what="the run to end")
            assert driver.execute_script("return window.sameDocument") == 42  # no reload
            assert text_of(driver, "#step") == "4"
            assert driver.find_elements("css selector", "#graph circle")
            assert driver.find_elements("css selector", "#figures #kf-intent-yes")
        except BaseException:
            run.kill()
            raise
        output, _ = run.communicate(timeout=180)  # the report loads the SSR embedder
        assert run.returncode == 0, output
        wait_for(lambda: report_linked(driver), what="the report link")  # written after the end
        assert driver.execute_script("return window.sameDocument") == 42

        driver.get(f"{base}/runs/{run_id}/agents/1")
        assert len(driver.find_elements("css selector", "#transcript details")) == 4
        driver.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
        assert "Reply with a JSON object" in text_of(driver, "#transcript")
        field = driver.find_element("css selector", "#interview-form input[name=question]")
        field.send_keys("Why did you answer that way?")
        field.submit()
        reply = wait_for(
            lambda: driver.find_elements("css selector", "#chat li.agent"), what="the reply"
        )
        assert reply[0].text == "echo: Why did you answer that way?"
        assert not severe(driver)
    database = RunDatabase(runs / run_id / "run.db", must_exist=True)
    with Session(database.engine) as session:
        rows = list(session.exec(select(InterviewRow)))
    database.close()
    assert [(r.kind, r.agent_id, r.reply) for r in rows] == [
        ("interview", 1, "echo: Why did you answer that way?")
    ]


def live_requests(browser: Any) -> int:
    """How many snapshots the open page has asked for."""
    entries = "performance.getEntriesByType('resource')"
    return int(
        browser.execute_script(f"return {entries}.filter(e => e.name.endsWith('/live')).length")
    )


@pytest.mark.browser
def test_a_finished_runs_page_stops_asking(driver: Any, tmp_path: Path) -> None:
    db_path, run_id = make_run(tmp_path)
    # Completed an hour ago, without a report: nothing on its page can change any more.
    set_run(db_path, run_id, updated=datetime.now(UTC) - timedelta(hours=1))
    with serving(build_app(ServeApp(RunSource(runs=db_path.parent.parent), poll_ms=100))) as base:
        driver.get(f"{base}/runs/{run_id}")
        wait_for(lambda: loaded(driver), what="the snapshot")
        time.sleep(2)  # four times the idle poll interval
        assert live_requests(driver) == 1
        # An interrupted run may be resumed: its page keeps looking in.
        set_run(db_path, run_id, status="interrupted")
        driver.get(f"{base}/runs/{run_id}")
        wait_for(lambda: live_requests(driver) >= 3, seconds=10, what="the page to ask again")
        driver.get("about:blank")  # before the server stops: this page polls for good


@pytest.mark.browser
def test_hostile_text_renders_as_text(driver: Any, tmp_path: Path) -> None:
    hostile = f"{HOSTILE} {{{{ 7*7 }}}} {{% if x %}}" + " lorem" * 20_000  # ~120 KB
    people = [{**p, "persona": p["persona"] + hostile} for p in personas()]

    def everyone_hostile(body: dict[str, Any]) -> Any:
        reply = hostile_responder(body)
        if isinstance(reply, dict):
            reply["reaction"] = f"Hmm {HOSTILE}"
        return reply

    db_path, run_id = make_run(tmp_path, responder=everyone_hostile, population=people)
    database = RunDatabase(db_path, must_exist=True)
    with Session(database.engine) as session:
        agent = session.exec(select(AgentRow)).first()
    database.close()
    assert agent is not None
    with serving(build_app(ServeApp(RunSource(runs=db_path.parent.parent)))) as base:
        driver.get_log("browser")
        driver.get(f"{base}/runs/{run_id}/agents/{agent.agent_id}")
        persona = text_of(driver, "#persona")
        assert HOSTILE in persona and "{{ 7*7 }}" in persona and "{% if x %}" in persona
        assert len(persona) > 100_000
        assert "49" not in persona.split("lorem")[0]
        driver.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
        assert HOSTILE in text_of(driver, "#transcript")
        assert driver.execute_script("return document.scripts.length") == 2  # ours only
        assert not driver.find_elements("css selector", "img[src='missing.png']")
        driver.get(f"{base}/runs/{run_id}")
        wait_for(lambda: loaded(driver), what="the snapshot")
        assert HOSTILE in text_of(driver, "#feed")
        assert not driver.find_elements("css selector", "img[src='missing.png']")
        assert not severe(driver)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest) -> str | None:
    """Where the runs go: None for ``runs/<run-id>/run.db``, else a new PostgreSQL database."""
    return None if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))


def count(browser: Any, css: str) -> int:
    """A number the page shows with thousands separators."""
    return int(text_of(browser, css).replace(",", ""))


def slow(body: dict[str, Any]) -> Any:
    """The usual varied answers, slowly: a step takes a few seconds, so the page sees it go."""
    time.sleep(0.1)
    return varied_responder(body)


@pytest.mark.browser
def test_runs_list_refreshes_itself(driver: Any, tmp_path: Path, database: str | None) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    source = RunSource(runs=runs, database=database)
    with serving(build_app(ServeApp(source, poll_ms=250))) as base:
        driver.get("about:blank")  # stops a page an earlier test left polling its stopped server
        driver.get_log("browser")
        driver.get(base)
        driver.execute_script("window.sameDocument = 42")
        assert driver.find_elements("css selector", "#no-runs")
        scenario = DEFAULT_SCENARIO.replace("steps: 3", "steps: 4")
        started = threading.Thread(
            target=make_run, args=(tmp_path, scenario, slow, None, database), daemon=True
        )
        started.start()
        row = "#runs tbody tr"
        wait_for(lambda: driver.find_elements("css selector", row), what="the new run's row")
        progress, calls = text_of(driver, f"{row} .progress"), count(driver, f"{row} .calls")
        assert text_of(driver, f"{row} .status") == "running"
        wait_for(lambda: text_of(driver, f"{row} .progress") != progress, what="a step")
        wait_for(lambda: text_of(driver, f"{row} .status") == "completed", what="the run to end")
        started.join(60)
        assert text_of(driver, f"{row} .progress") == "4/4"
        assert count(driver, f"{row} .calls") > calls and count(driver, f"{row} .tokens") > 0
        assert not driver.find_elements("css selector", "#no-runs, #problems")
        assert driver.execute_script("return window.sameDocument") == 42  # no reload
        assert not severe(driver)
        driver.get("about:blank")  # before the server stops: this page polls for good
