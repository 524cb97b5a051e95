"""``mode: archetypes`` (issue 14): one request per archetype, every agent its own draw."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from personahub.llm import LLMClient, load_settings
from personahub.llm.backends import BackendCall
from personahub.llm.testing import FunctionBackend
from sandbox.archetypes import draws
from sandbox.archetypes.buckets import bucket
from sandbox.archetypes.model import ArchetypeModel
from sandbox.archetypes.network import CSRGraph, watts_strogatz
from sandbox.archetypes.population import from_marginals
from sandbox.archetypes.state import PopulationState
from sandbox.run_options import RunOptions
from sandbox.rundb import RunDatabase
from sandbox.runner import resume_run, start_run
from sandbox.scenario import ScenarioError
from sandbox.scenario_loader import load_scenario

SCENARIO = """\
name: fares
mode: archetypes
seed: 3
steps: 4
agents:
  n: {n}
  attributes:
    age_band: {{"18-34": 0.3, "35-54": 0.4, "55+": 0.3}}
    region: {{north: 0.5, south: 0.5}}
graph: {{type: watts_strogatz, k: 6, p: 0.1}}
archetype: {{attributes: [age_band, region], fidelity: 1}}
interaction: {{activation: 0.8, post_share: 0.5}}
timeline:
  - {{step: 0, channel: seeded, k: {seeded}, content: "Bus fares rise from $2 to $3."}}
  - {{step: 2, channel: targeted, target: {{attributes: {{age_band: "55+"}}}},
      content: "Seniors keep the $1 fare."}}
questions:
  - {{id: support, type: choice, ask: "Do you support it?", options: ["yes", "no", "unsure"]}}
  - {{id: ride, type: likert, ask: "Will you keep riding?", scale: 5}}
segments: [age_band]
"""


def _weights(call: BackendCall) -> dict[str, float]:
    """Option weights that depend on the prompt only (what the group saw and who it is)."""
    prompt = " ".join(m["content"] for m in call.messages)
    seed = sum(map(ord, prompt)) % 997
    return {label: 1 + (seed * (i + 3)) % 7 for i, label in enumerate(call.options or ())}


def _client() -> LLMClient:
    settings = load_settings(backend="openai", model="scripted", cache=False, max_retries=0)
    return LLMClient(settings, backend=FunctionBackend(_weights, model="scripted"))


def _scenario(folder: Path, n: int = 3000, seeded: int = 300) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fares.yaml"
    path.write_text(SCENARIO.format(n=n, seeded=seeded))
    return path


def _final(database: str, folder: Path) -> PopulationState:
    run = RunDatabase(database, must_exist=True).run()
    assert run is not None
    return PopulationState.load(folder / "steps" / f"state_{run.last_step:04d}.parquet")


def test_graph_neighbour_counts_match_networkx() -> None:
    reference = nx.watts_strogatz_graph(200, 6, 0.2, seed=1)
    graph = CSRGraph.from_networkx(reference)
    assert graph.n_edges == reference.number_of_edges()
    senders = np.random.default_rng(0).random(200) < 0.3
    labels = np.random.default_rng(1).integers(0, 3, 200)
    counts = graph.neighbour_counts(senders, labels, 3)
    for node in (0, 17, 199):
        expected = np.zeros(3, dtype=int)
        for other in reference.neighbors(node):
            if senders[other]:
                expected[labels[other]] += 1
        assert counts[node].tolist() == expected.tolist()
    assert sorted(graph.to_networkx().edges) == sorted(tuple(sorted(e)) for e in reference.edges)


def test_generated_graph_is_simple_and_about_the_size_asked() -> None:
    graph = watts_strogatz(10_000, 10, 0.1, np.random.default_rng(2))
    assert 49_000 < graph.n_edges <= 50_000
    rows, cols = graph.rows, graph.indices
    assert not np.any(rows == cols)  # no self-loops
    assert len(set(zip(rows.tolist(), cols.tolist(), strict=True))) == len(rows)  # no repeats


def test_agents_move_between_archetypes_when_exposure_changes() -> None:
    rng = np.random.default_rng(4)
    table = from_marginals(1000, {"age": {"young": 0.5, "old": 0.5}}, rng)
    state = PopulationState.empty(1000, 1, 3)
    everyone = np.arange(1000)
    before = bucket(table, ["age"], state, everyone, [0, 1, 3])
    assert len(before.archetypes) == 2  # by age alone: nobody heard anything yet
    heard = np.zeros((1000, 3), dtype=np.int64)
    heard[:100, 1] = 4  # the first hundred heard four contacts answer option 1
    state.hear(heard)
    after = bucket(table, ["age"], state, everyone, [0, 1, 3])
    assert len(after.archetypes) == 4
    moved = after.archetypes[after.member_of[0]]
    assert (moved.heard, moved.heard_upper, moved.stance) == (3, None, 1)
    assert after.archetypes[after.member_of[500]].heard == 0
    assert sum(a.size for a in after.archetypes) == 1000


def test_each_agent_draws_its_own_answer_from_the_archetype_distribution() -> None:
    probs = np.array([[0.2, 0.5, 0.3], [0.9, 0.05, 0.05]])
    agents = np.arange(200_000)
    member_of = (agents % 2).astype(np.int32)
    codes = draws.draw(probs, member_of, draws.uniforms(agents, seed=7, step=1, stream=0))
    for archetype in (0, 1):
        mine = codes[member_of == archetype]
        shares = np.bincount(mine, minlength=3) / len(mine)
        assert np.abs(shares - probs[archetype]).max() < 0.01
    # an agent's draw is its own: the same whoever else draws with it
    alone = draws.uniforms(np.array([12345]), seed=7, step=1, stream=0)
    assert alone[0] == draws.uniforms(agents, seed=7, step=1, stream=0)[12345]


def test_a_run_asks_per_archetype_and_replays_exactly(tmp_path: Path) -> None:
    outcomes = []
    for name in ("a", "b"):
        scenario = _scenario(tmp_path / name)
        options = RunOptions(out=tmp_path / name / "runs")
        outcomes.append(start_run(scenario, options, {}, show_progress=False, llm=_client()))
    first, second = (_final(o.database, o.run_dir) for o in outcomes)
    assert np.array_equal(first.answers, second.answers)
    assert np.array_equal(first.heard, second.heard)
    database = RunDatabase(outcomes[0].database, must_exist=True)
    run = database.run()
    assert run is not None and run.status == "completed"
    metrics = [m.metrics for m in database.step_metrics(run.id)]
    # one request per archetype and question (and as many for the fidelity sample of one
    # agent per archetype): far fewer than one per acting agent
    assert sum(m["calls"] for m in metrics) < sum(m["per_agent_calls"] for m in metrics) / 4
    assert metrics[-1]["aware"] > 0.1  # word of mouth spread beyond the seeded 10%
    assert any(m["support:fidelity_gap"] is not None for m in metrics)
    assert (outcomes[0].run_dir / "report.html").exists() is False  # written by the CLI only
    from sandbox.report import write_report

    html = write_report(outcomes[0].database).read_text()
    assert "Final answers" in html and "fidelity gap" in html
    assert "By segment over time" in html and "age_band=55+" in html  # the largest archetypes


def test_resume_after_a_kill_equals_an_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = start_run(
        _scenario(tmp_path / "whole"),
        RunOptions(out=tmp_path / "whole" / "runs"),
        {},
        show_progress=False,
        llm=_client(),
    )
    real_step = ArchetypeModel.step

    def step(self: ArchetypeModel) -> None:
        if self.database is not None and self.current_step == 2:  # not the cost estimate's
            raise KeyboardInterrupt
        real_step(self)

    with monkeypatch.context() as patch:
        patch.setattr(ArchetypeModel, "step", step)
        with pytest.raises(KeyboardInterrupt):
            start_run(
                _scenario(tmp_path / "parts"),
                RunOptions(out=tmp_path / "parts" / "runs"),
                {},
                show_progress=False,
                llm=_client(),
            )
    (killed,) = (tmp_path / "parts" / "runs").glob("*/run.db")
    resumed = resume_run(killed, {}, show_progress=False, llm=_client())
    assert resumed.status == "completed"
    a, b = _final(whole.database, whole.run_dir), _final(str(killed), killed.parent)
    assert np.array_equal(a.answers, b.answers)
    assert np.array_equal(a.heard, b.heard)


def test_a_hundred_thousand_agents_end_to_end(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path, n=100_000, seeded=5_000)
    outcome = start_run(
        scenario, RunOptions(out=tmp_path / "runs", steps=2), {}, show_progress=False, llm=_client()
    )
    state = _final(outcome.database, outcome.run_dir)
    assert state.n == 100_000
    assert (state.answers[:, 0] >= 0).sum() > 4_000


def test_attributes_the_agents_lack_are_errors_at_their_line(tmp_path: Path) -> None:
    path = _scenario(tmp_path)
    path.write_text(path.read_text().replace("segments: [age_band]", "segments: [income]"))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    (line,) = caught.value.problems
    assert line.startswith(f"{path}:20: segments: expected one of")
    assert "age_band, region" in line and "income" in line
