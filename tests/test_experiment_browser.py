"""The experiment report, opened in real headless Chromium: charts load, nothing errors in
the console, the effects printed are on the page (skips without chromium, as the run report's
browser test does)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sandbox.experiment.execute import start_experiment
from sandbox.experiment.report import build_view, groups_of, write_experiment_report
from sandbox.run_options import RunOptions
from sandbox.rundb import RunDatabase
from tests.support.experiments import client, experiment_in
from tests.test_report_browser import driver, images_loaded, open_page, severe

__all__ = ["driver"]  # the browser fixture, shared with the run report's test


@pytest.mark.browser
def test_experiment_report_renders_in_chromium(driver: Any, tmp_path: Path) -> None:
    outcome = start_experiment(
        experiment_in(tmp_path, n=30),
        RunOptions(out=tmp_path / "runs", agents=30),
        {},
        show_progress=False,
        llm=client(),
    )
    db = RunDatabase(outcome.database)
    view = build_view(groups_of(db), "price-test", "experiment")
    path = write_experiment_report(view, outcome.folder)
    html = path.read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html  # self-contained
    open_page(driver, path)
    images = images_loaded(driver)
    assert len(images) >= 3  # forest plot + a curve per question
    assert all(width > 0 for _, width in images), images
    assert severe(driver) == []
    body = driver.find_element("tag name", "body").text
    effect = next(e for e in view.effects if e.name == "intent=yes")
    assert f"{100 * effect.diff:+.1f} pp" in body
    assert "The same persona in each arm" in body and "Holm" in body
