"""Tests for sandbox.forecast.analysis on real run databases produced against the fixture server.

The main run is scripted: every agent's answer at every step is a known function of its persona
index and the step, so each share and mean can be recomputed here by hand, with failed
interactions and carried-forward answers included.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import update
from sqlmodel import Session

from sandbox.forecast.analysis import build_forecast
from sandbox.forecast.anchors import generic_anchors
from sandbox.forecast.report import transcripts
from sandbox.forecast.results import Forecast
from sandbox.forecast.scenario import LikertQuestion
from sandbox.forecast.ssr import ssr_pmf
from sandbox.forecast.stats import bootstrap_means, resample_weights
from sandbox.rundb import InteractionRow, RunDatabase
from tests.support.runs import make_run, personas, scripted

N = 12
STEPS = 3
SEED = 7
OPTIONS = ["yes", "maybe", "no"]
ANCHORS = [
    "I hate this idea, it is terrible.",
    "I dislike it and would probably not use it.",
    "I have no strong feelings either way.",
    "I like it and would probably use it.",
    "I love it, I would sign up today.",
]
SCENARIO = f"""\
name: scripted
seed: {SEED}
population: {{source: people.jsonl}}
graph: {{type: watts_strogatz, k: 4, p: 0.0}}
steps: {STEPS}
timeline:
  - {{step: 0, content: "A new bike-share scheme launches."}}
  - {{step: 1, content: "The first reviews are in."}}
  - {{step: 2, content: "The scheme adds more stations."}}
# Only agents with news act: an event every step makes every agent act every step.
interaction: {{activation: 1.0, word_of_mouth: false}}
questions:
  - {{id: intent, type: choice, ask: "Would you subscribe?", options: [yes, maybe, no]}}
  - id: score
    type: likert
    ask: How do you feel about it?
    scale: 5
    anchors: {ANCHORS}
  - {{id: spend, type: number, ask: "Monthly spend?", min: 0, max: 200}}
  - {{id: note, type: text, ask: "Anything else?", max_length: 50}}
segments: [age_band, community]
"""


def answer(i: int, step: int) -> dict[str, Any] | str:
    """The script: persona 11 always fails, personas 0, 4, 8 fail at step 1 (broken JSON)."""
    if i == 11 or (step == 1 and i % 4 == 0):
        return "this is not JSON"
    score = (i + step) % 5 + 1
    return {
        "reaction": ANCHORS[score - 1],
        "intent": OPTIONS[(i + step) % 3],
        "score": score,
        "spend": float(10 * i + step),
        "note": f"note from {i}",
        "post": "",
    }


def state_at(step: int) -> dict[int, dict[str, Any]]:
    """Each persona's latest good answer at or before ``step``, computed from the script."""
    state: dict[int, dict[str, Any]] = {}
    for s in range(step + 1):
        for i in range(N):
            reply = answer(i, s)
            if isinstance(reply, dict):
                state[i] = reply
    return state


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunDatabase, str]:
    tmp = tmp_path_factory.mktemp("scripted")
    db_path, run_id = make_run(
        tmp, SCENARIO, scripted(answer, SEED, STEPS, N), population=personas(N)
    )
    return RunDatabase(db_path), run_id


@pytest.fixture(scope="module")
def forecast(run: tuple[RunDatabase, str]) -> Forecast:
    return build_forecast(*run, seed=1, n_boot=400)


def persona_of(db: RunDatabase, run_id: str) -> dict[int, int]:
    """agent id -> persona index, read from the persona text."""
    return {
        a.agent_id: int(re.search(r"Persona (\d+)", a.persona).group(1))  # type: ignore[union-attr]
        for a in db.agents(run_id)
    }


def test_choice_shares_match_the_script_at_every_step(forecast: Forecast) -> None:
    intent = forecast.question("intent")
    assert forecast.steps == (0, 1, 2)
    for t in forecast.steps:
        state = state_at(t)
        for series in intent.series:
            expected = sum(a["intent"] == series.label for a in state.values()) / len(state)
            assert series.points[t].value == pytest.approx(expected)
            assert series.points[t].n == len(state) == N - 1
    final = state_at(STEPS - 1)
    for option in OPTIONS:
        expected = sum(a["intent"] == option for a in final.values()) / len(final)
        assert forecast.key_figure(f"kf-intent-{option}").estimate.value == pytest.approx(expected)


def test_means_distribution_and_stats_match_the_script(forecast: Forecast) -> None:
    final = state_at(STEPS - 1)
    score, spend = forecast.question("score"), forecast.question("spend")
    for t in forecast.steps:
        state = state_at(t)
        assert score.series[0].points[t].value == pytest.approx(
            np.mean([a["score"] for a in state.values()])
        )
    scores = [a["score"] for a in final.values()]
    assert score.distribution == {str(k): pytest.approx(scores.count(k) / len(scores))
                                  for k in range(1, 6)}  # fmt: skip
    spends = np.array([a["spend"] for a in final.values()])
    assert spend.final["mean"].value == pytest.approx(spends.mean())
    assert spend.stats["median"] == pytest.approx(np.median(spends))
    assert spend.stats["p10"] == pytest.approx(np.percentile(spends, 10))
    assert spend.stats["p90"] == pytest.approx(np.percentile(spends, 90))
    note = forecast.question("note")
    assert note.samples and set(note.samples) <= {a["note"] for a in final.values()}


def test_failed_answers_carry_the_previous_answer_forward(
    forecast: Forecast, run: tuple[RunDatabase, str]
) -> None:
    # At step 1 personas 0, 4 and 8 failed: their step-0 answers must still count.
    with_carry = state_at(1)
    only_new = {i: answer(i, 1) for i in range(N) if isinstance(answer(i, 1), dict)}
    point = forecast.question("spend").series[0].points[1]
    assert point.value == pytest.approx(np.mean([a["spend"] for a in with_carry.values()]))
    assert point.value != pytest.approx(np.mean([a["spend"] for a in only_new.values()]))
    assert point.n == 11
    # Persona 11 never answered: it is not counted anywhere.
    assert forecast.n_answered == N - 1
    assert forecast.n_agents == N


def test_errors_are_counted_as_no_answer(forecast: Forecast) -> None:
    failures = sum(isinstance(answer(i, s), str) for i in range(N) for s in range(STEPS))
    assert forecast.n_interactions == N * STEPS
    assert forecast.n_errors == failures == 6
    assert forecast.errors_by_kind == {"invalid_json": 6}
    assert forecast.error_rate == pytest.approx(6 / 36)
    assert forecast.key_figure("kf-errors").text == "6"
    assert forecast.key_figure("kf-error-rate").text == "16.7%"
    assert all(f.kind == "invalid_json" for f in forecast.failures)


def test_intervals_contain_the_point_estimate(forecast: Forecast) -> None:
    estimates = [p for q in forecast.questions for s in q.series for p in s.points]
    estimates += [e for q in forecast.questions for e in q.final.values()]
    estimates += [e for seg in forecast.segments for g in seg.groups
                  for by_q in g.estimates.values() for e in by_q.values()]  # fmt: skip
    assert estimates
    for e in estimates:
        if e.value is not None:
            assert e.low is not None and e.high is not None
            assert e.low <= e.value <= e.high


def test_intervals_shrink_with_more_agents() -> None:
    rng = np.random.default_rng(0)
    widths = []
    for n in (20, 80, 320):
        values = (np.arange(n) % 10 < 3).astype(float)  # 30% share, any n
        estimate = bootstrap_means(values[None, :], resample_weights(rng, 1000, n))[0]
        assert estimate.value == pytest.approx(0.3)
        widths.append(estimate.high - estimate.low)  # type: ignore[operator]
    assert widths[0] > widths[1] > widths[2]


def test_bootstrap_is_seeded_and_vectorised() -> None:
    weights = resample_weights(np.random.default_rng(3), 50, 7)
    assert weights.shape == (50, 7)
    assert (weights.sum(axis=1) == 7).all()
    again = resample_weights(np.random.default_rng(3), 50, 7)
    assert (weights == again).all()
    nobody = bootstrap_means(np.full((1, 7), np.nan), weights)[0]
    assert nobody.value is None and nobody.n == 0


def test_segments_match_the_script(forecast: Forecast, run: tuple[RunDatabase, str]) -> None:
    db, run_id = run
    final = state_at(STEPS - 1)
    index = persona_of(db, run_id)
    agents = {a.agent_id: a for a in db.agents(run_id)}
    people = personas(N)
    by_key = {s.key: s for s in forecast.segments}
    assert set(by_key) == {"age_band", "community"}
    for key, value_of in (
        ("age_band", lambda aid: people[index[aid]]["age_band"]),
        ("community", lambda aid: str(agents[aid].community)),
    ):
        for group in by_key[key].groups:
            members = [index[aid] for aid in agents if value_of(aid) == group.value]
            assert group.n == len(members)
            answered = [final[i] for i in members if i in final]
            yes = group.estimates["intent"]["yes"]
            assert yes.n == len(answered)
            if answered:
                share = sum(a["intent"] == "yes" for a in answered) / len(answered)
                assert yes.value == pytest.approx(share)
                mean = np.mean([a["score"] for a in answered])
                assert group.estimates["score"]["mean"].value == pytest.approx(mean)
        assert sum(g.n for g in by_key[key].groups) == N


def test_ssr_compares_reactions_with_direct_answers(forecast: Forecast) -> None:
    ssr = forecast.question("score").ssr
    assert ssr is not None
    assert ssr.anchors == tuple(ANCHORS)
    assert ssr.n == N - 1
    assert sum(ssr.ssr) == pytest.approx(1.0)
    assert sum(ssr.direct) == pytest.approx(1.0)
    scores = [a["score"] for a in state_at(STEPS - 1).values()]
    assert ssr.direct == pytest.approx([scores.count(k) / len(scores) for k in range(1, 6)])
    assert ssr.direct_mean == pytest.approx(np.mean(scores))
    assert 0 <= ssr.mean_abs_diff <= 1 and 0 <= ssr.ks <= 1  # type: ignore[operator]
    assert forecast.question("intent").ssr is None


def test_ssr_pmf_peaks_at_the_anchor_the_reaction_repeats() -> None:
    from personahub.embeddings import get_embedder

    embedder = get_embedder()
    sims = embedder.encode(ANCHORS) @ embedder.encode(ANCHORS).T  # reaction i == anchor i
    pmf = ssr_pmf(sims)
    assert pmf.sum(axis=1) == pytest.approx(np.ones(5))
    assert (pmf.argmax(axis=1) == np.arange(5)).all()
    assert (pmf >= 0).all()
    sharper = ssr_pmf(sims, temperature=0.5)
    assert (sharper.max(axis=1) > pmf.max(axis=1)).all()


def test_ssr_pmf_edge_cases() -> None:
    assert ssr_pmf(np.full((2, 4), 0.3)) == pytest.approx(np.full((2, 4), 0.25))
    pmf = ssr_pmf(np.array([[0.1, 0.5, 0.3]]))
    assert pmf[0] == pytest.approx([0.0, 0.4 / 0.6, 0.2 / 0.6])


@pytest.mark.parametrize("scale", [3, 4, 5, 7, 11])
def test_generic_anchors_are_first_person_and_ordered(scale: int) -> None:
    question = LikertQuestion(id="q", ask="Do you agree?", type="likert", scale=scale)
    anchors = generic_anchors(question)
    assert len(anchors) == len(set(anchors)) == scale
    assert anchors[0] == "I strongly disagree." and anchors[-1] == "I strongly agree."
    assert all(a.startswith("I ") for a in anchors)
    if scale % 2:
        assert "neither" in anchors[scale // 2]


def test_run_where_every_interaction_failed(tmp_path: Path) -> None:
    db_path, run_id = make_run(tmp_path, responder=lambda body: "never valid JSON")
    forecast = build_forecast(RunDatabase(db_path), run_id, n_boot=100)
    assert forecast.n_answered == 0
    assert forecast.n_errors == forecast.n_interactions > 0
    assert forecast.error_rate == 1.0
    assert forecast.key_figure("kf-intent-yes").text == "n/a"
    assert forecast.question("price_ok").ssr is None
    assert all(p.value is None for s in forecast.question("intent").series for p in s.points)


def test_unknown_run_is_an_error(run: tuple[RunDatabase, str]) -> None:
    with pytest.raises(ValueError, match="no run"):
        build_forecast(run[0], "missing-run")


def test_interactions_record_what_the_agent_saw(tmp_path: Path) -> None:
    db_path, run_id = make_run(tmp_path)  # word of mouth on: posts reach neighbours
    db = RunDatabase(db_path)
    delivered = {(m.step, m.dst_agent, m.src_agent, m.content) for m in db.messages(run_id)}
    rows = db.interactions(run_id)
    launch = "CityBike launches a subscription at $29 a month."
    event = {"step": 0, "kind": "event", "source": "the news", "content": launch}
    assert all(r.observations == [{**event, "strength": 1.0, "sender": None}]
               for r in rows if r.step == 0)  # fmt: skip
    posts = [(r, o) for r in rows for o in r.observations or [] if o["kind"] == "post"]
    assert posts
    for row, seen in posts:
        assert seen["step"] < row.step and seen["source"].startswith("someone you know")
        assert (seen["step"], row.agent_id, seen["sender"], seen["content"]) in delivered
        assert seen["content"] in row.messages[-1]["content"]  # what the prompt showed


def test_transcripts_show_the_recorded_observations(tmp_path: Path) -> None:
    db_path, run_id = make_run(tmp_path)
    db = RunDatabase(db_path)
    forecast = build_forecast(db, run_id, n_boot=50)
    by_key = {(r.step, r.agent_id): r for r in db.interactions(run_id)}
    shown = [(t.agent_id, s) for g in transcripts(db, forecast) for t in g.transcripts
             for s in t.steps]  # fmt: skip
    assert shown
    for agent_id, step in shown:
        row = by_key[(step.step, agent_id)]
        assert step.observations == [f"{o['source']}: {o['content']}" for o in row.observations]
    # A database from before observations were recorded (NULL) still reports, seeing nothing.
    with Session(db.engine) as session:
        session.execute(update(InteractionRow).values(observations=None))
        session.commit()
    old = [s for g in transcripts(db, forecast) for t in g.transcripts for s in t.steps]
    assert old and all(s.observations == [] for s in old)
