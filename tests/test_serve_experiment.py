"""``sandbox serve`` and experiments (issue 15): the runs list shows an experiment as one line,
and its page shows the arms side by side with their runs, key figures and report link."""

from __future__ import annotations

import html
from pathlib import Path

from starlette.testclient import TestClient

from sandbox.experiment.execute import start_experiment
from sandbox.experiment.report import (
    build_view,
    groups_of,
    write_experiment_report,
    write_run_reports,
)
from sandbox.run_options import RunOptions
from sandbox.rundb import RunDatabase
from sandbox.serve.app import ServeApp, build_app
from sandbox.serve.source import RunSource
from tests.support.experiments import EXPERIMENT, client, experiment_in
from tests.support.runs import make_run

HOSTILE = "<script>alert(1)</script>"
# One seed and one sweep point per arm (2 runs), the point's value hostile text.
SMALL = EXPERIMENT.replace("seeds: 3", "seeds: 1") + f"sweep:\n  vars: {{tag: ['{HOSTILE}']}}\n"


def test_experiment_is_one_line_and_its_arms_side_by_side(tmp_path: Path) -> None:
    _db, plain = make_run(tmp_path)  # a plain run beside the experiment, in tmp_path/runs
    path = experiment_in(tmp_path / "experiment", SMALL, n=8)
    runs = tmp_path / "runs"
    outcome = start_experiment(
        path, RunOptions(out=runs, agents=8), {}, show_progress=False, llm=client()
    )
    assert outcome.statuses == {"completed": 2}
    database = RunDatabase(outcome.database, must_exist=True)
    members = {row.arm: row.run_id for row in database.experiment_runs()}
    database.close()
    app = build_app(ServeApp(RunSource(runs=runs)))
    with TestClient(app, base_url="http://127.0.0.1") as http:
        listed = http.get("/api/runs").json()
        page = http.get("/").text
        experiment = http.get(f"/experiment/{outcome.experiment_id}")
        unwritten = http.get(f"/experiment/{outcome.experiment_id}/report")
        reports = write_run_reports(outcome.database, outcome.folder)
        database = RunDatabase(outcome.database, must_exist=True)
        view = build_view(groups_of(database), "t", "experiment", reports)
        write_experiment_report(view, outcome.folder)
        database.close()
        # experiment.html links each run's report relative to itself, as served here too
        run_reports = [
            http.get(f"/experiment/{outcome.experiment_id}/{link}") for link in reports.values()
        ]
        run_pages = [http.get(f"/runs/{run_id}").text for run_id in members.values()]
        linked = http.get(f"/experiment/{outcome.experiment_id}").text
        report = http.get(f"/experiment/{outcome.experiment_id}/report")
        missing = http.get("/experiment/nope")
    assert [r["id"] for r in listed["runs"]] == [plain]  # the arms' runs are not listed apart
    [line] = listed["experiments"]
    assert line["id"] == outcome.experiment_id
    assert (line["arms"], line["runs"], line["status"]) == (["control", "cheap"], 2, "2 completed")
    assert f'href="/experiment/{outcome.experiment_id}"' in page
    assert experiment.status_code == 200 and "Content-Security-Policy" in experiment.headers
    text = experiment.text
    assert HOSTILE not in text and html.escape(HOSTILE, quote=False) in text
    assert text.count('class="arm"') == 2
    for run_id in members.values():
        assert f'href="/runs/{run_id}"' in text
    assert text.count('class="figure"') >= 2  # the runs' key figures
    assert 'id="experiment-report"' not in text and unwritten.status_code == 404
    assert 'id="experiment-report"' in linked
    assert (
        report.status_code == 200
        and "default-src 'none'" in report.headers["Content-Security-Policy"]
    )
    assert missing.status_code == 404
    assert len(run_reports) == 2 and all(r.status_code == 200 for r in run_reports)
    # each run's page shows its report link (hidden until a report is found)
    assert all('id="report-link" hidden' not in page for page in run_pages)
