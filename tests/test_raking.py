"""Raking weights (``population.match``): the fit itself, its use in a forecast, and the
scenario errors that point at the line."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from sandbox.forecast.analysis import build_forecast
from sandbox.forecast.report import print_summary, render_report
from sandbox.raking import kish_effective_n, rake
from sandbox.report import environment
from sandbox.rundb import RunDatabase
from sandbox.scenario_loader import ScenarioError, load_scenario
from tests.support.runs import AGE_BANDS, make_run, personas, scripted

# A population where education and sex are correlated, so one margin moves the other.
PEOPLE = (
    [{"sex": "man", "education": "degree"}] * 30
    + [{"sex": "man", "education": "school"}] * 20
    + [{"sex": "woman", "education": "degree"}] * 10
    + [{"sex": "woman", "education": "school"}] * 40
)
TARGETS = {"sex": {"man": 0.49, "woman": 0.51}, "education": {"degree": 0.3, "school": 0.7}}


def _share(weights: np.ndarray, key: str, value: str) -> float:
    picked = np.array([p[key] == value for p in PEOPLE])
    return float(weights[picked].sum() / weights.sum())


def test_raking_reproduces_the_target_marginals() -> None:
    raking = rake(list(PEOPLE), TARGETS)
    assert raking.converged and not raking.warnings()
    for key, shares in TARGETS.items():
        for value, target in shares.items():
            assert _share(raking.weights, key, value) == pytest.approx(target, abs=1e-4)
            margin = next(m for m in raking.summary.margins if m.key == key)
            assert margin.achieved[value] == pytest.approx(target, abs=1e-4)
    assert raking.weights.mean() == pytest.approx(1.0)
    # Unequal weights are worth fewer agents than there are.
    assert raking.summary.effective_n == pytest.approx(kish_effective_n(raking.weights))
    assert 50 < raking.summary.effective_n < len(PEOPLE)
    assert kish_effective_n(np.ones(7)) == pytest.approx(7)


def test_joint_cells_are_matched() -> None:
    cells = {"man x degree": 0.25, "man x school": 0.25, "woman x degree": 0.25,
             "woman x school": 0.25}  # fmt: skip
    raking = rake(list(PEOPLE), {"sex x education": cells})
    assert raking.converged
    for value in cells:
        sex, education = value.split(" x ")
        picked = np.array([p["sex"] == sex and p["education"] == education for p in PEOPLE])
        assert raking.weights[picked].sum() / raking.weights.sum() == pytest.approx(0.25)


def test_a_target_nobody_has_and_non_convergence_are_warned() -> None:
    people = [{"sex": "man"}] * 5 + [{"sex": "woman"}] * 5
    raking = rake(people, {"sex": {"man": 0.4, "woman": 0.4, "other": 0.2}})
    assert raking.empty == ("sex=other",)
    assert "no agent has sex=other" in raking.warnings()[0]
    # The others are scaled up to fill its share: 50/50 here.
    assert raking.summary.margins[0].achieved == pytest.approx(
        {"man": 0.5, "woman": 0.5, "other": 0.0}
    )
    # Two margins that contradict each other on a population where they coincide.
    tied = [{"a": "x", "b": "x"}] * 5 + [{"a": "y", "b": "y"}] * 5
    stuck = rake(tied, {"a": {"x": 0.8, "y": 0.2}, "b": {"x": 0.2, "y": 0.8}}, max_iterations=20)
    assert not stuck.converged
    (line,) = stuck.warnings()
    assert "did not converge in 20 passes" in line
    assert f"{100 * stuck.summary.max_deviation:.1f} points" in line
    assert stuck.summary.max_deviation > 0.2


SCENARIO = """\
name: matched
seed: 3
population:
  source: people.jsonl
  match:
    age_band: {{18-34: {young}, 35-54: 0.2, 55+: 0.2}}
graph: {{type: watts_strogatz, k: 4, p: 0.0}}
steps: 1
timeline:
  - {{step: 0, content: "A new bike-share scheme launches."}}
interaction: {{activation: 1.0, word_of_mouth: false}}
questions:
  - {{id: intent, type: choice, ask: "Would you subscribe?", options: [yes, no]}}
segments: [age_band]
"""


def _young_say_yes(i: int, step: int) -> dict[str, Any]:
    """Agents aged 18-34 answer yes, the others no."""
    young = AGE_BANDS[i % len(AGE_BANDS)] == "18-34"
    return {"reaction": "ok", "intent": "yes" if young else "no", "post": ""}


def test_weighted_forecast_moves_shares_to_the_targets(tmp_path: Path) -> None:
    db_path, run_id = make_run(
        tmp_path, SCENARIO.format(young=0.6), scripted(_young_say_yes, 3, 1, 12), personas(12)
    )
    db = RunDatabase(db_path)
    assert all(a.weight is not None for a in db.agents(run_id))
    forecast = build_forecast(db, run_id, n_boot=200)
    yes = forecast.question("intent").final["yes"]
    # A third of the agents are young (unweighted 33%); weighted, yes is their target share.
    assert yes.value == pytest.approx(0.6)
    assert yes.low is not None and yes.high is not None and yes.low <= 0.6 <= yes.high
    weighting = forecast.weighting
    assert weighting is not None
    assert weighting.margins[0].unweighted["18-34"] == pytest.approx(1 / 3)
    assert weighting.margins[0].achieved["18-34"] == pytest.approx(0.6)
    assert forecast.key_figure("kf-effective-n").estimate.value == pytest.approx(
        weighting.effective_n
    )
    run = db.run(run_id)
    assert run is not None
    html = render_report(environment(), db, run)
    assert 'id="match"' in html and 'id="effective-n"' in html
    out = io.StringIO()
    print_summary(db, run, Console(file=out, width=120))
    text = out.getvalue()
    assert "effective sample size" in text and "60.0%" in text and "33.3%" in text


def test_unweighted_runs_show_no_weighting(tmp_path: Path) -> None:
    text = SCENARIO.format(young=0.6).replace(
        "  match:\n    age_band: {18-34: 0.6, 35-54: 0.2, 55+: 0.2}\n", ""
    )
    db_path, run_id = make_run(tmp_path, text, scripted(_young_say_yes, 3, 1, 12), personas(12))
    db = RunDatabase(db_path)
    forecast = build_forecast(db, run_id, n_boot=50)
    assert forecast.weighting is None
    assert forecast.question("intent").final["yes"].value == pytest.approx(1 / 3)
    assert all(k.id != "kf-effective-n" for k in forecast.key_figures)
    assert all(a.weight is None for a in db.agents(run_id))


def _scenario_file(tmp_path: Path, match: str) -> Path:
    people = tmp_path / "people.jsonl"
    people.write_text("\n".join(json.dumps(p) for p in personas(12)) + "\n", encoding="utf-8")
    text = SCENARIO.format(young=0.6).replace(
        "    age_band: {18-34: 0.6, 35-54: 0.2, 55+: 0.2}\n", match
    )
    path = tmp_path / "matched.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        (
            "    age_band: {18-34: 0.5, 35-54: 0.2, 55+: 0.2}\n",
            "matched.yaml:6: population.match.age_band: expected shares that sum to 1, found 0.9",
        ),
        (
            "    age_band: {18-34: 0.6, 35-54: 0.2, 75+: 0.2}\n",
            "matched.yaml:6: population.match.age_band.75+: no persona has this value "
            "(values: '18-34', '35-54', '55+') (found '75+')",
        ),
        (
            "    sex: {man: 0.5, woman: 0.5}\n",
            "matched.yaml:6: population.match.sex: no persona has the attribute 'sex'",
        ),
        (
            "    age_band x location: {18-34: 1.0}\n",
            "matched.yaml:6: population.match.age_band x location.18-34: expected a value of 2 "
            "parts joined by 'x' (found '18-34')",
        ),
        (
            "    age_band: {18-34: 1.5, 35-54: -0.5}\n",
            "matched.yaml:6: population.match.age_band.18-34: expected less than or equal to 1",
        ),
    ],
)
def test_match_errors_name_file_line_and_field(tmp_path: Path, match: str, expected: str) -> None:
    path = _scenario_file(tmp_path, match)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    shown = [p.replace(str(path.parent) + "/", "") for p in caught.value.problems]
    assert any(p.startswith(expected) for p in shown), shown


def test_joint_match_on_existing_values_validates(tmp_path: Path) -> None:
    cells = "{18-34 x city centre: 0.5, 35-54 x suburb: 0.5}"
    path = _scenario_file(tmp_path, f"    age_band x location: {cells}\n")
    scenario = load_scenario(path)
    assert scenario.population.match == {
        "age_band x location": {"18-34 x city centre": 0.5, "35-54 x suburb": 0.5}
    }
