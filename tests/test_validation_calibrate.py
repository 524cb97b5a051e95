"""A calibration end to end through the normal run machinery: 30 held-out respondents of the
1988 Chile survey, answered by an in-process fake model (and once by the embedded model)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from personahub.llm import LLMClient, load_settings
from personahub.llm.backends import BackendCall
from personahub.llm.testing import FunctionBackend
from sandbox.cli.app import app
from sandbox.forecast.scenario import ForecastScenario
from sandbox.rundb import RunDatabase
from sandbox.scenario_loader import validate_scenario
from sandbox.validation.calibrate import (
    CalibrationOptions,
    calibrate,
    scenario_data,
)
from sandbox.validation.data import load_frame
from sandbox.validation.report import EMBEDDED_NOTE, print_table
from sandbox.validation.respondents import from_frame
from sandbox.validation.results import load_result
from sandbox.validation.spec import load_spec

REPO = Path(__file__).resolve().parents[1]
CHILE = REPO / "scenarios/validation/chile.yaml"


def always_no(call: BackendCall) -> str:
    """Every respondent will vote no."""
    return json.dumps(
        {"reaction": "I have made up my mind.", "vote": "no, against Pinochet", "post": ""}
    )


def test_calibration_on_30_chile_respondents(tmp_path: Path) -> None:
    backend = FunctionBackend(always_no, model="always-no")
    llm = LLMClient(load_settings(None, cache_path=str(tmp_path / "cache.sqlite")), backend=backend)
    options = CalibrationOptions(respondents=30, out=tmp_path / "runs")
    result, outcome = calibrate(CHILE, options, {}, show_progress=False, llm=llm)

    # an ordinary forecast run: one step, every held-out respondent asked once
    database = RunDatabase(outcome.database)
    run = database.run()
    assert run is not None and run.status == "completed"
    agents = database.agents(run.id)
    assert len(agents) == 30 and len(backend.calls) == 30
    assert {a.attributes["sex"] for a in agents} <= {"man", "woman", "unknown"}
    assert "Respondent r" in agents[0].persona and "Sex:" in agents[0].persona

    # the held-out respondents are real ones, none of them in the training split
    spec = load_spec(CHILE)
    everyone = {r.id: r for r in from_frame(spec, load_frame(spec.data.source, CHILE.parent))}
    held = [everyone[a.persona_id] for a in agents]
    assert result.respondents == 30 and all(r.answers for r in held)
    assert result.train == sum(1 for r in everyone.values() if r.answers) - 30

    overall = {r.method: r.scores for r in result.rows if r.question == "vote" and r.group == "all"}
    assert list(overall) == ["uniform", "overall", "logistic", "llm"]
    # everyone answered "N": accuracy is the share of real N answers among the held-out
    real_no = np.mean([r.answers["vote"] == "N" for r in held])
    assert overall["llm"].accuracy == pytest.approx(real_no, abs=1e-4)
    assert overall["uniform"].simbench == 0 and overall["uniform"].accuracy == 0.25
    assert overall["llm"].dispersion == 0  # one answer for everyone: no spread at all
    assert result.unanswered == {"vote": 0} and result.answer_mode == "sample"
    groups = {(r.group, r.value) for r in result.rows if r.group != "all"}
    assert {g for g, _ in groups} == {"sex", "education", "region"}

    # saved in the run folder: re-reporting needs no recompute
    assert load_result(outcome.run_dir) == result
    assert (outcome.run_dir / "calibration" / "respondents.jsonl").is_file()
    console = Console(record=True, width=160)
    print_table(result, console)
    text = console.export_text()
    assert "personas (sample)" in text and "logistic" in text and "SimBench" in text
    assert EMBEDDED_NOTE[:40] not in text


def test_calibrate_command_writes_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import personahub.llm.testing  # noqa: F401  (registers the `test` backend)

    monkeypatch.chdir(tmp_path)
    args = ["calibrate", str(CHILE), "--respondents", "20", "--backend", "test", "--quiet"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "runs").iterdir()
    html = (folder / "calibration.html").read_text()
    assert "logistic regression (demographics)" in html and "report.html" in html
    assert (folder / "report.html").is_file() and (folder / "calibration.json").is_file()
    assert f"calibration: runs/{folder.name}/calibration.html" in result.output.replace("\n", "")

    # scoring the same run again (as after `sandbox resume`) gives the same scores
    saved = (folder / "calibration.json").read_text()
    again = CliRunner().invoke(app, ["calibrate", str(CHILE), "--run", str(folder)])
    assert again.exit_code == 0, again.output
    assert (folder / "calibration.json").read_text() == saved


def test_calibrate_input_errors_are_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    too_many = runner.invoke(app, ["calibrate", str(CHILE), "--respondents", "9999"])
    assert too_many.exit_code == 2
    assert "--respondents 9999: chile-1988 has 2,532 respondents with answers" in too_many.output
    none = runner.invoke(app, ["calibrate", str(CHILE), "--respondents", "0"])
    assert none.exit_code == 2 and "--respondents 0: expected 1 or more" in none.output
    bad_mode = runner.invoke(app, ["calibrate", str(CHILE), "--answer-mode", "guess"])
    assert bad_mode.exit_code != 0 and "expected sample, logprobs or verbalized" in bad_mode.output


def test_logprobs_calibration_asks_option_requests_alone() -> None:
    # A survey respondent's step is one option request per question: no structured reply with
    # a reaction in its own words, which would cost more than the distribution itself.
    data = scenario_data(load_spec(CHILE), 0, "logprobs", 10)
    assert data["answer_mode"] == "logprobs"
    assert data["interaction"]["reactions"] is False
    scenario = validate_scenario(data, Path("generated.yaml"))
    assert isinstance(scenario, ForecastScenario)
    assert not scenario.step_reply
    assert scenario_data(load_spec(CHILE), 0, "sample", 10)["interaction"].get("reactions", True)


@pytest.mark.slow
def test_calibration_on_the_embedded_model(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    sandbox = Path(sys.executable).with_name("sandbox")
    args = [str(sandbox), "calibrate", str(CHILE), "--respondents", "30", "--quiet"]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=1800, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "plumbing, not a forecaster" in done.stdout.replace("\n", " ")
    (folder,) = (tmp_path / "runs").iterdir()
    result = load_result(folder)
    assert result.backend == "local" and result.respondents == 30
    assert "plumbing, not a" in (folder / "calibration.html").read_text()


COUNTS = """\
question,group_attribute,group_value,option,count
voted,sex,F,Y,30
voted,sex,F,N,10
voted,sex,M,Y,20
voted,sex,M,N,40
"""

COUNT_SPEC = """\
name: tiny-counts
data: {source: counts.csv, kind: counts}
persona: A person.
questions:
  - {id: vote, column: voted, ask: How will you vote?, options: {Y: "yes", N: "no"}}
demographics:
  - {column: sex, label: sex, codes: {F: woman, M: man}}
groups: [sex]
respondents: 40
"""


def test_calibration_against_a_counts_table(tmp_path: Path) -> None:
    (tmp_path / "counts.csv").write_text(COUNTS)
    spec = tmp_path / "spec.yaml"
    spec.write_text(COUNT_SPEC)
    backend = FunctionBackend(
        lambda call: json.dumps({"reaction": "ok", "vote": "yes", "post": ""})
    )
    llm = LLMClient(load_settings(None, cache_path=str(tmp_path / "cache.sqlite")), backend=backend)
    options = CalibrationOptions(out=tmp_path / "runs")
    result, _ = calibrate(spec, options, {}, show_progress=False, llm=llm)
    assert result.kind == "counts" and result.respondents == 40 and result.train == 0
    rows = {(r.group, r.value, r.method): r.scores for r in result.rows}
    assert {m for _, _, m in rows} == {"uniform", "overall", "llm"}  # no logistic without people
    # the real shares are the table's: women 75% yes, men 33% yes, everyone 50% yes
    women = rows[("sex", "woman", "llm")]
    assert women.accuracy is None and women.simbench == pytest.approx(0.0)  # TV .25 / .25
    men = rows[("sex", "man", "llm")]
    # all "yes" vs (1/3, 2/3): TV 2/3 over TV(uniform) 1/6 -> 100 * (1 - 4) = -300
    assert men.simbench == pytest.approx(-300.0)
    assert rows[("all", "", "overall")].simbench is None  # the real shares are uniform
