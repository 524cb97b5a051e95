"""The run report, opened in real headless Chromium: every chart loads, nothing errors in the
console, the key figures printed by the forecast are on the page, and text from the database is
shown as text (never markup). Plus the terminal summary and partial / all-failed runs.

Chromium and chromedriver are system packages: without them the browser tests skip, except
under CI (``CI=true``), where a missing browser is a failure.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import delete, update
from sqlmodel import Session

from sandbox.forecast.analysis import build_forecast
from sandbox.report import REPORT_NAME, print_summary, write_report
from sandbox.rundb import InteractionRow, RunDatabase, RunRow, StepMetricRow
from tests.support.runs import make_run, persona_index, personas, varied_responder

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
HOSTILE = '<script>console.error("injected")</script><img src="missing.png" alt="x">'


def _browser_missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return f"{path} is not installed (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    return None


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    missing = _browser_missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests need chromium under CI: {missing}")
        pytest.skip(f"browser tests skipped: {missing}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--window-size=1280,1000",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):  # fmt: skip
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield browser
    finally:
        browser.quit()


def hostile_responder(body: dict[str, Any]) -> Any:
    """Varied answers, with markup in every free-text answer and in persona 0's words."""
    reply = varied_responder(body)
    if isinstance(reply, dict):
        reply["wish"] = HOSTILE
        if persona_index(body) == 0:
            reply["reaction"] = f"Hmm {HOSTILE}"
            reply["post"] = HOSTILE
    return reply


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    people = [{**p, "persona": p["persona"] + " Likes <b>bold</b> & co."} for p in personas()]
    return make_run(tmp_path_factory.mktemp("report"), responder=hostile_responder,
                    population=people)  # fmt: skip


def open_page(driver: Any, path: Path) -> None:
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(path.resolve().as_uri())
    driver.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")


def images_loaded(driver: Any) -> list[tuple[str, int]]:
    return driver.execute_script(
        "return Array.from(document.images).map(i => [i.id, i.complete ? i.naturalWidth : 0])"
    )


def severe(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


@pytest.mark.browser
def test_report_renders_in_chromium(driver: Any, run: tuple[Path, str]) -> None:
    db_path, run_id = run
    path = write_report(db_path, run_id)
    assert path == db_path.parent / REPORT_NAME
    html = path.read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html  # self-contained
    open_page(driver, path)

    images = images_loaded(driver)
    ids = {i for i, _ in images}
    assert {"plot-intent", "plot-price_ok", "plot-spend", "plot-ssr-price_ok"} <= ids
    assert {"plot-segment-age_band", "plot-segment-community"} <= ids
    assert all(width > 0 for _, width in images), images
    for img in driver.find_elements("css selector", "img.plot"):
        assert img.get_attribute("alt")
    assert severe(driver) == []

    forecast = build_forecast(RunDatabase(db_path), run_id)
    body = driver.find_element("tag name", "body").text
    assert forecast.name in body and forecast.description in body
    for option in forecast.question("intent").final:
        figure = forecast.key_figure(f"kf-intent-{option}")
        row = driver.find_element("id", figure.id).text
        assert figure.text in row and figure.interval in row
    for fid in ("kf-price-ok-mean", "kf-spend-mean", "kf-agents", "kf-errors", "kf-tokens"):
        assert forecast.key_figure(fid).text in driver.find_element("id", fid).text
    assert driver.find_element("id", "run-status").text == "completed"
    assert "name: test-run" in driver.find_element("id", "scenario-yaml").text


@pytest.mark.browser
def test_database_text_is_escaped(driver: Any, run: tuple[Path, str]) -> None:
    path = write_report(*run)
    open_page(driver, path)
    body = driver.find_element("tag name", "body").text
    assert HOSTILE in body  # shown literally, among the text answers and in transcripts
    assert "Likes <b>bold</b> & co." in body
    assert driver.find_elements("css selector", "script, img:not(.plot), .persona b") == []
    assert all(width > 0 for _, width in images_loaded(driver))
    assert severe(driver) == []


def _truncate_to(db_path: Path, run_id: str, last_step: int, status: str) -> None:
    """Make the database look like a run killed after ``last_step`` was committed."""
    database = RunDatabase(db_path)
    with Session(database.engine) as session:
        for table in (InteractionRow, StepMetricRow):
            session.execute(delete(table).where(table.run_id == run_id, table.step > last_step))
        session.execute(
            update(RunRow).where(RunRow.id == run_id).values(last_step=last_step, status=status)
        )
        session.commit()
    database.close()


@pytest.mark.browser
def test_partial_run(driver: Any, tmp_path: Path) -> None:
    db_path, run_id = make_run(tmp_path)
    _truncate_to(db_path, run_id, 0, "interrupted")
    path = write_report(db_path, run_id)
    open_page(driver, path)
    assert "interrupted" in driver.find_element("id", "notice-partial").text
    assert "1 of 3 steps" in driver.find_element("id", "notice-partial").text
    assert all(width > 0 for _, width in images_loaded(driver))
    assert severe(driver) == []


@pytest.mark.browser
def test_run_where_every_interaction_failed(driver: Any, tmp_path: Path) -> None:
    db_path, _ = make_run(tmp_path, responder=lambda body: "no JSON here")
    path = write_report(db_path)  # the latest run, found without its id
    open_page(driver, path)
    assert "every one of" in driver.find_element("id", "notice-no-answers").text
    assert "n/a" in driver.find_element("id", "kf-intent-yes").text
    assert "invalid_json" in driver.find_element("id", "failures").text
    assert images_loaded(driver) == []  # nothing to chart, and no broken images
    assert severe(driver) == []


def test_print_summary(run: tuple[Path, str]) -> None:
    db_path, run_id = run
    write_report(db_path, run_id)
    out = io.StringIO()
    print_summary(db_path, run_id, console=Console(file=out, width=120))
    text = out.getvalue()
    forecast = build_forecast(RunDatabase(db_path), run_id)
    for figure in forecast.key_figures[:3]:
        assert figure.text in text and figure.interval in text
    assert "calls" in text and "tokens" in text
    assert str(db_path.parent / REPORT_NAME) in text.replace("\n", "")


def test_write_report_errors(tmp_path: Path, run: tuple[Path, str]) -> None:
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path / "nothing" / "run.db")
    with pytest.raises(ValueError, match="no run"):
        write_report(run[0], "no-such-run")
    out = write_report(f"sqlite:///{run[0]}", run[1], tmp_path / "elsewhere")
    assert out == tmp_path / "elsewhere" / REPORT_NAME and out.is_file()
