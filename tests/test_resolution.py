"""Resolution: scores against hand-computed values, outcomes from shares and from a CSV (with
file:line:field errors), and `sandbox resolve` + `sandbox track` round trips on SQLite and
PostgreSQL run databases."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from sandbox.cli import app
from sandbox.forecast.resolution import (
    ResolutionError,
    parse_shares,
    read_answers,
    resolve,
    resolved,
    score,
    simbench_score,
    total_variation,
    wasserstein_score,
)
from sandbox.forecast.scenario import ChoiceQuestion, LikertQuestion, NumberQuestion
from sandbox.report import write_report
from sandbox.rundb import RunDatabase
from tests.support.runs import make_run, personas, scripted

CHOICE = ChoiceQuestion(id="intent", type="choice", ask="Would you?", options=["yes", "no"])
LIKERT = LikertQuestion(id="score", type="likert", ask="How much?", scale=3)
NUMBER = NumberQuestion(id="spend", type="number", ask="How much?", min=0, max=100)


def test_scores_match_hand_computed_values() -> None:
    actual = np.array([0.41, 0.59])
    assert total_variation(np.array([0.5, 0.5]), actual) == pytest.approx(0.09)
    assert simbench_score(np.array([0.5, 0.5]), actual) == pytest.approx(0.0)  # = uniform
    assert simbench_score(actual, actual) == pytest.approx(100.0)
    # TV 0.18 against a uniform guess's 0.09: twice as far, -100.
    assert simbench_score(np.array([0.23, 0.77]), actual) == pytest.approx(-100.0)
    assert simbench_score(np.array([1.0, 0.0]), np.array([0.5, 0.5])) is None
    # All mass at 1 vs all at 3 on a 3-point scale: W1 = 2 = k - 1.
    assert wasserstein_score(np.array([1.0, 0, 0]), np.array([0, 0, 1.0])) == pytest.approx(0.0)
    assert wasserstein_score(np.array([0, 1.0, 0]), np.array([0, 0, 1.0])) == pytest.approx(0.5)
    likert = score(LIKERT, {"1": 0.0, "2": 1.0, "3": 0.0}, {"1": 0.0, "2": 0.0, "3": 1.0})
    assert likert.tv == pytest.approx(1.0) and likert.simbench == pytest.approx(-50.0)
    assert likert.w1_score == pytest.approx(0.5) and likert.mean_error == pytest.approx(1.0)
    choice = score(CHOICE, {"yes": 0.5, "no": 0.5}, {"yes": 0.41, "no": 0.59})
    assert choice.tv == pytest.approx(0.09) and choice.w1_score is None
    assert choice.mean_error is None
    number = score(NUMBER, {"mean": 30.0}, {"mean": 42.5})
    assert number.mean_error == pytest.approx(12.5) and number.tv is None


def test_shares_are_parsed_and_checked() -> None:
    assert parse_shares("yes=0.41, no=0.59", CHOICE) == pytest.approx({"yes": 0.41, "no": 0.59})
    assert parse_shares("3=1", LIKERT) == {"1": 0.0, "2": 0.0, "3": 1.0}
    assert parse_shares("mean=42", NUMBER) == {"mean": 42.0}
    for text, message in [
        ("yes=0.5,no=0.3", "expected shares that sum to 1, found 0.8"),
        ("maybe=1", "found 'maybe=1'"),
        ("yes=lots", "yes: expected a number, found 'lots'"),
        ("yes=1.5", "yes: expected a share from 0 to 1"),
    ]:
        with pytest.raises(ResolutionError, match=message):
            parse_shares(text, CHOICE)


def test_answers_csv_gives_the_distribution_and_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "answers.csv"
    path.write_text("id,intent\n1,yes\n2,no\n3,\n4,no\n5,yes\n6,no\n", encoding="utf-8")
    actual, n = read_answers(path, CHOICE, None)
    assert n == 5 and actual == pytest.approx({"yes": 0.4, "no": 0.6})
    path.write_text("id,intent\n1,yes\n2,perhaps\n", encoding="utf-8")
    with pytest.raises(ResolutionError) as caught:
        read_answers(path, CHOICE, None)
    assert str(caught.value) == f"{path}:3: intent: expected one of yes, no, found 'perhaps'"
    with pytest.raises(ResolutionError, match=r"answers.csv:1: vote: no such column \(columns"):
        read_answers(path, CHOICE, "vote")
    path.write_text("answer\n10\n20\nabc\n", encoding="utf-8")
    with pytest.raises(ResolutionError, match=r"answers.csv:4: answer: expected a number"):
        read_answers(path, NUMBER, None)  # the only column is used
    with pytest.raises(ResolutionError, match="cannot read the answers"):
        read_answers(tmp_path / "missing.csv", CHOICE, None)


SCENARIO = """\
name: resolvable
seed: 2
population: {source: people.jsonl}
graph: {type: watts_strogatz, k: 4, p: 0.0}
steps: 1
timeline:
  - {step: 0, content: "A new bike-share scheme launches."}
interaction: {activation: 1.0, word_of_mouth: false}
questions:
  - {id: intent, type: choice, ask: "Would you subscribe?", options: [yes, no]}
  - {id: score, type: likert, ask: "How good is it?", scale: 3}
  - {id: spend, type: number, ask: "Monthly spend?", min: 0, max: 100}
"""


def _answer(i: int, step: int) -> dict[str, Any]:
    """Persona i: yes for the first quarter; score 1, 2, 3 in turn; spend 5 * i."""
    return {"reaction": "fine", "intent": "yes" if i < 3 else "no", "score": i % 3 + 1,
            "spend": float(5 * i), "post": ""}  # fmt: skip


def _run(tmp_path: Path, database: str | None = None) -> tuple[Path, str]:
    return make_run(tmp_path, SCENARIO, scripted(_answer, 2, 1, 12), personas(12), database)


def test_resolve_and_track_round_trip(tmp_path: Path) -> None:
    db_path, run_id = _run(tmp_path)
    runs = tmp_path / "runs"
    answers = tmp_path / "answers.csv"
    answers.write_text("score\n1\n3\n3\n3\n", encoding="utf-8")
    cli = CliRunner()
    env = {"COLUMNS": "200"}
    done = cli.invoke(
        app,
        ["resolve", run_id, "--question", "intent", "--actual", "yes=0.25,no=0.75",
         "--out", str(runs), "--by", "tester"],
        env=env,
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    # The forecast was exactly right: 3 of 12 said yes.
    assert "resolved: " in done.output and "100.0" in done.output and "0.000" in done.output
    done = cli.invoke(
        app,
        ["resolve", str(db_path.parent), "--question", "score", "--actual-csv", str(answers),
         "--out", str(runs), "--by", "tester"],
        env=env,
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    done = cli.invoke(
        app,
        ["resolve", run_id, "--question", "spend", "--actual", "mean=30", "--out", str(runs)],
        env=env,
    )
    assert done.exit_code == 0, done.output

    db = RunDatabase(db_path)
    run = db.run(run_id)
    assert run is not None
    items = {r.question.id: r for r in resolved(db, run)}
    assert set(items) == {"intent", "score", "spend"}
    assert items["intent"].outcome.resolved_by == "tester"
    assert items["intent"].scores.simbench == pytest.approx(100.0)
    # Forecast: a third at each point (mean 2); real: 1/4 at 1, 3/4 at 3 (mean 2.5).
    score_row = items["score"]
    assert score_row.outcome.n == 4 and score_row.outcome.source.endswith("answers.csv")
    assert score_row.scores.tv == pytest.approx(5 / 12)
    assert score_row.scores.w1_score == pytest.approx(1 - (1 / 12 + 5 / 12) / 2)
    assert score_row.scores.mean_error == pytest.approx(0.5)
    assert items["spend"].scores.mean_error == pytest.approx(2.5)  # forecast mean 27.5
    db.close()

    out_csv = tmp_path / "track.csv"
    done = cli.invoke(app, ["track", "--out", str(runs), "--csv", str(out_csv)], env=env)
    assert done.exit_code == 0, done.output
    assert "resolved runs in" in done.output and "SimBench" in done.output
    with out_csv.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["run"], r["question"]) for r in rows] == [
        (run_id, "intent"), (run_id, "score"), (run_id, "spend")
    ]  # fmt: skip
    assert rows[0]["SimBench"] == "100.0" and rows[1]["n"] == "4"
    assert rows[2]["|mean error|"] == "2.50"

    html = write_report(db_path, run_id).read_text(encoding="utf-8")
    assert 'id="resolution"' in html and 'id="resolved-score"' in html
    assert "SimBench score <b>100.0</b>" in html


def test_resolving_again_replaces_and_bad_input_is_one_line(tmp_path: Path) -> None:
    db_path, run_id = _run(tmp_path)
    cli = CliRunner()
    base = ["resolve", run_id, "--out", str(tmp_path / "runs")]
    for shares in ("yes=0.5,no=0.5", "yes=0.25,no=0.75"):
        assert cli.invoke(app, [*base, "--question", "intent", "--actual", shares]).exit_code == 0
    db = RunDatabase(db_path)
    (outcome,) = db.outcomes(run_id)
    assert outcome.actual == pytest.approx({"yes": 0.25, "no": 0.75})
    db.close()
    for args, message in [
        (["--question", "nope", "--actual", "yes=1"], "expected one of intent, score, spend"),
        (["--question", "intent"], "give the outcome as --actual SHARES or --actual-csv FILE"),
        (["--question", "intent", "--actual", "yes=0.2"], "expected shares that sum to 1"),
    ]:
        done = cli.invoke(app, [*base, *args], env={"COLUMNS": "200"})
        assert done.exit_code == 2 and message in done.output, done.output
    done = CliRunner().invoke(app, ["track", "--out", str(tmp_path / "none")])
    assert done.exit_code == 0 and "no resolved runs" in done.output


def test_resolve_on_both_databases(tmp_path: Path, db_url: str) -> None:
    _, run_id = _run(tmp_path, db_url)
    db = RunDatabase(db_url)
    try:
        item = resolve(db, run_id, "intent", shares="yes=0.5,no=0.5", who="tester")
        assert item.scores.tv == pytest.approx(0.25)
        again = resolve(db, run_id, "intent", shares="yes=0.25,no=0.75", who="tester")
        assert again.scores.tv == pytest.approx(0.0)
        run = db.run(run_id)
        assert run is not None
        (only,) = resolved(db, run)
        assert only.outcome.predicted == pytest.approx({"yes": 0.25, "no": 0.75})
        assert only.outcome.resolved_at is not None
    finally:
        db.close()
