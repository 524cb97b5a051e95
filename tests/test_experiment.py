"""Experiments (issue 13): arms x seeds through one gateway, effects with paired bootstrap
intervals, resume of a killed experiment, line-precise errors, compare, the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sandbox.cli.app import app
from sandbox.experiment.effects import RunAnswers, compare, holm
from sandbox.experiment.execute import resume_experiment, start_experiment
from sandbox.experiment.report import build_view, groups_of
from sandbox.experiment.spec import load_experiment
from sandbox.forecast.model import ForecastModel
from sandbox.run_options import RunOptions
from sandbox.rundb import RunDatabase
from sandbox.scenario import ScenarioError
from tests.support.experiments import (
    EXPERIMENT,
    client,
    experiment_in,
    identical_responder,
    price_responder,
)

N_AGENTS = 60


def run_experiment(folder: Path, responder=price_responder, text: str = EXPERIMENT) -> str:
    path = experiment_in(folder, text, n=N_AGENTS)
    outcome = start_experiment(
        path,
        RunOptions(out=folder / "runs", agents=N_AGENTS),
        {},
        show_progress=False,
        llm=client(responder),
    )
    assert outcome.statuses == {"completed": 6}
    return outcome.database


def arm_answers(database: str) -> dict[str, list[RunAnswers]]:
    db = RunDatabase(database)
    out: dict[str, list[RunAnswers]] = {}
    for row in db.experiment_runs():
        out.setdefault(row.arm, []).append(RunAnswers.read(db, row.run_id))
    return out


def overall(effects, name):
    return next(e for e in effects if e.name == name and not e.segment)


def test_effect_interval_covers_the_scripted_difference(tmp_path: Path) -> None:
    arms = arm_answers(run_experiment(tmp_path))
    effects = holm(compare(arms["control"], arms["cheap"], "control", "cheap"))
    effect = overall(effects, "intent=yes")
    assert effect.covers(0.30) and not effect.covers(0.0)
    assert len(effect.seed_diffs) == 3 and effect.p < 0.01
    assert overall(effects, "spend (mean)").diff == pytest.approx(3.0)
    assert all(e.p_holm is not None for e in effects if not e.segment)
    assert {e.segment for e in effects} >= {"", "age_band=18-34", "age_band=55+"}


def test_identical_arms_cover_zero(tmp_path: Path) -> None:
    arms = arm_answers(run_experiment(tmp_path, identical_responder))
    effect = overall(compare(arms["control"], arms["cheap"], "control", "cheap"), "intent=yes")
    assert effect.covers(0.0)
    assert effect.p > 0.05


def test_runs_share_personas_and_graph(tmp_path: Path) -> None:
    db = RunDatabase(run_experiment(tmp_path))
    rows = db.experiment_runs()
    assert [r.arm for r in rows] == ["control"] * 3 + ["cheap"] * 3
    assert [r.seed_index for r in rows] == [0, 1, 2] * 2
    personas = {tuple(a.persona_id for a in db.agents(r.run_id)) for r in rows}
    edges = {tuple((e.src, e.dst) for e in db.edges(r.run_id)) for r in rows}
    assert len(personas) == 1 and len(edges) == 1
    seeds = [db.run(r.run_id).seed for r in rows]
    assert seeds == [3, 4, 5, 3, 4, 5]
    cheap = db.messages(rows[3].run_id, kind="event")[0].content
    assert "$19" in cheap and "$29" in db.messages(rows[0].run_id, kind="event")[0].content


def interactions_by_run(database: str) -> dict[tuple[str, int], list[tuple]]:
    db = RunDatabase(database)
    return {
        (row.arm, row.seed_index): sorted(
            (i.step, i.agent_id, str(i.parsed)) for i in db.interactions(row.run_id)
        )
        for row in db.experiment_runs()
    }


def test_resume_of_a_killed_experiment_equals_an_uninterrupted_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = EXPERIMENT.replace("steps: 2\n", "steps: 3\n").replace(
        '  - {step: 0, content: "CityBike',
        '  - {step: 2, content: "Reviews are mixed."}\n  - {step: 0, content: "CityBike',
    )
    whole = run_experiment(tmp_path / "whole", text=text)
    real = ForecastModel._step
    calls = {"n": 0}

    async def killed(self: ForecastModel) -> None:
        if self.database is None:  # a run's estimate (a dry run, recording nothing) goes on
            return await real(self)
        calls["n"] += 1
        if self.current_step == 2 and calls["n"] > 9:  # some runs are past step 1, some not
            raise KeyboardInterrupt
        await real(self)

    folder = tmp_path / "parts"
    with monkeypatch.context() as patch:
        patch.setattr(ForecastModel, "_step", killed)
        with pytest.raises(KeyboardInterrupt):
            start_experiment(
                experiment_in(folder, text, n=N_AGENTS),
                RunOptions(out=folder / "runs", agents=N_AGENTS),
                {},
                show_progress=False,
                llm=client(),
            )
    database = str(next((folder / "runs").glob("*/run.db")))
    db = RunDatabase(database)
    statuses = [db.run(r.run_id).status for r in db.experiment_runs()]
    assert "interrupted" in statuses and "running" not in statuses
    outcome = resume_experiment(database, {}, show_progress=False, llm=client())
    assert outcome.statuses == {"completed": 6}
    assert interactions_by_run(database) == interactions_by_run(whole)


@pytest.mark.parametrize(
    ("section", "line", "field", "message"),
    [
        ("experiment:\n  seeds: 0\n  arms: {a: {}}\n", 14, "experiment.seeds", "greater than"),
        ("experiment:\n  arms: {a: {colour: red}}\n", 14, "experiment.arms.a.colour", "unknown"),
        ("experiment:\n  control: b\n  arms: {a: {}}\n", 14, "experiment.control", "one of"),
        ("experiment:\n  arms:\n    a: {override: {population: {sample: 3}}}\n", 15,
         "experiment.arms.a.override", "cannot override population"),
        ("experiment:\n  arms:\n    a:\n      override: {questions: {nope: {ask: x}}}\n", 16,
         "experiment.arms.a.override.questions.nope", "no such element"),
        ("experiment:\n  arms: {a: {vars: {cost: 1}}}\n", 7, "timeline[0].content",
         "unknown variable 'price'"),
        ("experiment:\n  vars: {price: 1}\n  arms: {a: {}}\nsweep:\n  vars: {price: [1, 2, 3]}\n"
         "  max_runs: 2\n", 17, "sweep", "3 runs; at most 2"),
        ("sweep:\n  set: {interaction.activation: [0.5, 7]}\n", 8, "interaction.activation",
         "less than or equal"),
    ],
)  # fmt: skip
def test_malformed_sections_give_file_line_field(
    tmp_path: Path, section: str, line: int, field: str, message: str
) -> None:
    base = EXPERIMENT[: EXPERIMENT.index("experiment:")]
    if "price" not in section and "unknown variable" not in message:
        base = base.replace("{{ price }}", "$29")
    path = experiment_in(tmp_path, base + section)
    with pytest.raises(ScenarioError) as caught:
        load_experiment(path)
    problem = caught.value.problems[0]
    assert problem.startswith(f"{path}:{line}: {field}"), problem
    assert message in problem


def test_plain_run_points_to_sandbox_experiment(tmp_path: Path) -> None:
    path = experiment_in(tmp_path)
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2
    assert "sandbox experiment" in result.output


def test_cli_experiment_resume_and_compare(tmp_path: Path, monkeypatch) -> None:
    path = experiment_in(tmp_path, n=N_AGENTS)
    monkeypatch.setattr(
        "sandbox.experiment.execute.LLMClient", lambda settings: client(price_responder)
    )
    runner = CliRunner()
    out = tmp_path / "runs"
    result = runner.invoke(
        app,
        [
            "experiment",
            str(path),
            "--out",
            str(out),
            "--seeds",
            "2",
            "--quiet",
            "--agents",
            "30",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "effects" in result.output and "Holm" in result.output
    folder = next(out.iterdir())
    page = (folder / "experiment.html").read_text()
    resumed = runner.invoke(app, ["resume", str(folder), "--quiet"])
    assert resumed.exit_code == 0, resumed.output
    db = RunDatabase(folder / "run.db")
    rows = db.experiment_runs()
    assert len(rows) == 4
    for row in rows:
        # every arm x seed run has its own estimate and report, as a lone run has
        run = db.run(row.run_id)
        assert run is not None and run.estimate is not None and run.estimate["calls"] > 0
        report = (folder / row.run_id / "report.html").read_text()
        assert "model calls" in report and f"{run.estimate['calls']:,}" in report
        assert f'<a href="{row.run_id}/report.html">' in page
    refs = [str(folder / rows[0].run_id), str(folder / rows[-1].run_id)]
    compared = runner.invoke(app, ["compare", *refs, "--out", str(tmp_path / "cmp")])
    assert compared.exit_code == 0, compared.output
    assert "Holm" in compared.output
    assert (tmp_path / "cmp" / "experiment.html").is_file()


def test_compare_refuses_runs_with_other_questions(tmp_path: Path) -> None:
    database = run_experiment(tmp_path)
    db = RunDatabase(database)
    groups = groups_of(db)
    view = build_view(groups, "t", "experiment")
    assert view.n_comparisons == 3
    other = EXPERIMENT.replace('options: ["yes", "no"]', 'options: ["yes", "no", "maybe"]')
    second = run_experiment(tmp_path / "other", text=other)
    result = CliRunner().invoke(
        app,
        ["compare", str(Path(database).parent / groups[0].runs[0][1]),
         str(Path(second).parent / groups_of(RunDatabase(second))[0].runs[0][1]),
         "--out", str(tmp_path / "cmp")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "different questions" in result.output
