"""The simulation against the fixture OpenAI server: spread, reproducibility, resume, failures."""

from __future__ import annotations

import hashlib
import json
import re
import textwrap
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from personahub.db.engine import DatabaseError
from personahub.llm import LLMClient, load_settings
from sandbox.forecast.agent import Observation
from sandbox.forecast.model import ForecastModel
from sandbox.population import PersonaRecord
from sandbox.run_folders import locate_run
from sandbox.run_options import RunOptions
from sandbox.rundb import RunDatabase
from sandbox.runner import resume_run, start_run
from sandbox.scenario_loader import parse_scenario
from tests.support.fake_openai import FakeOpenAIServer

CHAIN = 5


def write_population(folder: Path, n: int, chain: bool) -> None:
    """``n`` personas; with ``chain`` they are linked p0-p1-...-p(n-1) and nothing else."""
    with (folder / "people.jsonl").open("w") as out:
        for i in range(n):
            row = {
                "id": f"p{i}",
                "persona": f"Person number {i}, who works as trade {i % 4}.",
                "group": "even" if i % 2 == 0 else "odd",
            }
            out.write(json.dumps(row) + "\n")
    if chain:
        with (folder / "edges.jsonl").open("w") as out:
            for i in range(n - 1):
                out.write(json.dumps({"src": f"p{i}", "dst": f"p{i + 1}", "relation": "friend"}))
                out.write("\n")


def scenario_file(folder: Path, body: str) -> Path:
    """Write the scenario ``body`` plus the shared questions."""
    path = folder / "scenario.yaml"
    path.write_text(textwrap.dedent(body) + QUESTIONS)
    return path


def client_for(server: FakeOpenAIServer, tmp_path: Path, **overrides: Any) -> LLMClient:
    settings = load_settings(
        backend="openai",
        base_urls=[server.base_url],
        cache_path=tmp_path / "cache.sqlite",
        backoff_base_s=0.01,
        backoff_max_s=0.02,
        timeout_s=5,
        **overrides,
    )
    return LLMClient(settings)


def persona_number(body: dict[str, Any]) -> int:
    match = re.search(r"Person number (\d+)", body["messages"][0]["content"])
    assert match, body["messages"][0]["content"]
    return int(match.group(1))


def seeded_answer(body: dict[str, Any]) -> str:
    """An answer that depends on the request seed (run seed, step, agent) only."""
    digest = int(hashlib.sha256(str(body.get("seed")).encode()).hexdigest(), 16)
    return json.dumps(
        {
            "reaction": f"reaction {digest % 97}",
            "intent": ["yes", "maybe", "no"][digest % 3],
            "fair": 1 + digest % 5,
            "post": "you should look at this" if digest % 2 else "",
        }
    )


QUESTIONS = """\
questions:
  - {id: intent, ask: "Would you subscribe?", type: choice, options: [yes, maybe, no]}
  - {id: fair, ask: "Is the price fair?", type: likert, scale: 5}
"""


def load_run(db_path: str) -> dict[str, Any]:
    """Database contents that must not depend on run ids, timings or row ids."""
    database = RunDatabase(db_path)
    run = database.run()
    assert run is not None
    return {
        "status": run.status,
        "interactions": [
            (i.step, i.agent_id, i.parsed, i.post, i.error_kind, i.messages)
            for i in database.interactions(run.id)
        ],
        "messages": sorted(
            (m.step, m.kind, m.src_agent, m.dst_agent, m.relation, m.content)
            for m in database.messages(run.id)
        ),
        "metrics": [(m.step, m.metrics) for m in database.step_metrics(run.id)],
        "states": database.states(run.id),
    }


def test_posts_spread_one_hop_per_step(tmp_path: Path) -> None:
    write_population(tmp_path, CHAIN, chain=True)
    path = scenario_file(
        tmp_path,
        f"""\
        name: spread
        seed: 1
        population: {{source: people.jsonl, edges: edges.jsonl}}
        graph: {{type: persona_edges, connect_isolated: false}}
        steps: {CHAIN}
        timeline:
          - step: 0
            channel: targeted
            target: {{regex: "Person number 0,"}}
            content: News only person zero hears.
        interaction: {{activation: 1.0, word_of_mouth: true}}
        """,
    )

    def responder(body: dict[str, Any]) -> str:
        # Everyone relays once, at their first action: the news must travel one hop per step.
        first_time = "last time you said" not in body["messages"][1]["content"]
        return json.dumps(
            {
                "reaction": "noted",
                "intent": "yes",
                "fair": 3,
                "post": "pass it on" if first_time else "",
            }
        )

    with FakeOpenAIServer() as server:
        server.configure(responder=responder)
        outcome = start_run(
            path,
            RunOptions(out=tmp_path / "runs"),
            {},
            llm=client_for(server, tmp_path),
            show_progress=False,
        )
    contents = load_run(outcome.database)
    assert contents["status"] == "completed"
    database = RunDatabase(outcome.database)
    agent_of = {a.persona_id: a.agent_id for a in database.agents(outcome.run_id)}
    first_action: dict[int, int] = {}
    for step, agent, *_ in contents["interactions"]:
        first_action.setdefault(agent, step)
    assert {pid: first_action[agent_of[pid]] for pid in agent_of} == {
        f"p{i}": i for i in range(CHAIN)
    }
    # Posts travel only along graph edges, labelled with the relation.
    neighbours = {frozenset((agent_of[f"p{i}"], agent_of[f"p{i + 1}"])) for i in range(CHAIN - 1)}
    posts = [m for m in contents["messages"] if m[1] == "post"]
    assert posts and all(frozenset((m[2], m[3])) in neighbours for m in posts)
    assert {m[4] for m in posts} == {"friend"}
    # The news reached only p0 as an event.
    events = [m for m in contents["messages"] if m[1] == "event"]
    assert [(m[0], m[3]) for m in events] == [(0, agent_of["p0"])]
    # Awareness grows by one agent per step: after step t, p0..p(t+1) have heard of it.
    aware = [metrics["aware"] for _, metrics in contents["metrics"]]
    assert aware == [min(CHAIN, t + 2) / CHAIN for t in range(CHAIN)]


def test_agents_reach_their_graph_neighbours_through_their_cells(tmp_path: Path) -> None:
    scenario = parse_scenario(
        textwrap.dedent(
            """\
            name: cells
            steps: 1
            timeline: [{step: 0, content: News.}]
            """
        )
        + QUESTIONS,
        tmp_path / "cells.yaml",
    )
    graph = nx.Graph()
    graph.add_nodes_from(range(4))
    # Added out of node order: neighbours must still come in node order (replayable runs).
    graph.add_edge(0, 3, relation="colleague", strength=0.2)
    graph.add_edge(0, 1, relation="friend", strength=0.9)
    graph.add_edge(1, 2, relation="", strength=0.5)
    personas = [PersonaRecord(f"p{i}", f"Person number {i}.", {}) for i in range(4)]
    model = ForecastModel(scenario, personas, graph, LLMClient(load_settings()), seed=1)
    agents = model.by_node
    assert list(model.agents) == agents
    assert [a.cell.coordinate for a in agents] == [0, 1, 2, 3]

    reached = agents[0].share("pass it on", step=2)
    assert reached == [(agents[1], "friend"), (agents[3], "colleague")]
    assert agents[1].inbox == [
        Observation(2, "post", "someone you know (friend)", "pass it on", 0.9, agents[0].unique_id)
    ]
    assert [o.strength for o in agents[3].inbox] == [0.2]
    assert agents[2].inbox == [] and agents[0].inbox == []
    assert agents[1].dirty and not agents[2].dirty


SEEDED = """\
name: repro
seed: {seed}
population: {{source: people.jsonl, sample: 16}}
graph: {{type: watts_strogatz, k: 4, p: 0.3}}
steps: 3
timeline:
  - {{step: 0, channel: seeded, k: 6, content: "A rumour about a new product."}}
  - {{step: 1, content: "The product launches for everyone."}}
interaction: {{activation: 0.5, memory_size: 2}}
"""


def run_seeded(tmp_path: Path, name: str, seed: int, server: FakeOpenAIServer) -> str:
    folder = tmp_path / name
    folder.mkdir()
    write_population(folder, 20, chain=False)
    path = scenario_file(folder, SEEDED.format(seed=seed))
    outcome = start_run(
        path,
        RunOptions(out=folder / "runs"),
        {},
        llm=client_for(server, folder, cache=False),
        show_progress=False,
    )
    return outcome.database


def test_same_seed_same_database_contents(tmp_path: Path) -> None:
    with FakeOpenAIServer() as server:
        server.configure(responder=seeded_answer)
        first = load_run(run_seeded(tmp_path, "a", 5, server))
        second = load_run(run_seeded(tmp_path, "b", 5, server))
        other = load_run(run_seeded(tmp_path, "c", 6, server))
    assert first == second
    assert first["interactions"] and first["messages"]
    assert other["interactions"] != first["interactions"]


def test_resume_after_crash_equals_uninterrupted_run(tmp_path: Path, monkeypatch) -> None:
    with FakeOpenAIServer() as server:
        server.configure(responder=seeded_answer)
        reference = load_run(run_seeded(tmp_path, "whole", 9, server))

        real_commit = RunDatabase.commit_step

        def crash_at_step_2(self, run_id, step, **kwargs):  # type: ignore[no-untyped-def]
            if step == 2:
                raise KeyboardInterrupt  # the process dies before step 2 is committed
            return real_commit(self, run_id, step, **kwargs)

        monkeypatch.setattr(RunDatabase, "commit_step", crash_at_step_2)
        with pytest.raises(KeyboardInterrupt):
            run_seeded(tmp_path, "crashed", 9, server)
        monkeypatch.setattr(RunDatabase, "commit_step", real_commit)

        db_path = next((tmp_path / "crashed" / "runs").glob("*/run.db"))
        partial = load_run(str(db_path))
        assert partial["status"] == "interrupted"
        assert [step for step, _ in partial["metrics"]] == [0, 1]

        outcome = resume_run(
            db_path,
            {},
            llm=client_for(server, tmp_path / "crashed", cache=False),
            show_progress=False,
        )
    assert outcome.status == "completed"
    assert load_run(str(db_path)) == reference


def test_llm_failures_are_recorded_and_the_run_completes(tmp_path: Path) -> None:
    write_population(tmp_path, 8, chain=False)
    path = scenario_file(
        tmp_path,
        """\
        name: failures
        seed: 2
        population: {source: people.jsonl}
        graph: {type: barabasi_albert, m: 2}
        steps: 2
        timeline: [{step: 0, content: "Launch."}]
        interaction: {activation: 1.0}
        """,
    )
    with FakeOpenAIServer() as server:
        # One request meets two 500s (more than max_retries=1 allows) and fails; another gets
        # truncated JSON three times (first answer + 2 re-asks) and gives up; the rest succeed.
        server.configure(
            queue=[
                {"status": 500},
                {"status": 500},
                {"broken_json": True},
                {"broken_json": True},
                {"broken_json": True},
            ]
        )
        client = client_for(
            server, tmp_path, cache=False, max_retries=1, max_reasks=2, concurrency=1
        )
        outcome = start_run(
            path, RunOptions(out=tmp_path / "runs"), {}, llm=client, show_progress=False
        )
    contents = load_run(outcome.database)
    assert contents["status"] == "completed"
    kinds = [row[4] for row in contents["interactions"]]
    assert kinds.count("server_error") == 1
    # The truncated object is closed by repair but lacks fields, so re-asks end in a violation.
    assert kinds.count("schema_violation") == 1
    assert kinds.count(None) == len(kinds) - 2
    assert contents["metrics"][0][1]["errors"] == 2
    database = RunDatabase(outcome.database)
    failed = [i for i in database.interactions(outcome.run_id) if i.error_kind]
    assert all(i.error_message and i.parsed is None for i in failed)


def test_run_in_a_database_url_can_be_located_and_resumed(
    tmp_path: Path, monkeypatch, db_url: str
) -> None:
    folder = tmp_path / "url"
    folder.mkdir()
    write_population(folder, 10, chain=False)
    path = scenario_file(folder, SEEDED.format(seed=4))
    url = db_url if "://" in db_url else f"sqlite:///{db_url}"
    real_commit = RunDatabase.commit_step

    def crash_at_step_1(self, run_id, step, **kwargs):  # type: ignore[no-untyped-def]
        if step == 1:
            raise KeyboardInterrupt
        return real_commit(self, run_id, step, **kwargs)

    with FakeOpenAIServer() as server:
        server.configure(responder=seeded_answer)
        monkeypatch.setattr(RunDatabase, "commit_step", crash_at_step_1)
        with pytest.raises(KeyboardInterrupt):
            start_run(
                path,
                RunOptions(out=folder / "runs", database=url),
                {},
                llm=client_for(server, folder, cache=False),
                show_progress=False,
            )
        monkeypatch.setattr(RunDatabase, "commit_step", real_commit)
        assert locate_run(url) == url
        outcome = resume_run(
            locate_run(url),
            {},
            llm=client_for(server, folder, cache=False),
            show_progress=False,
            out=folder / "runs",
        )
    assert outcome.status == "completed"
    assert outcome.run_dir == folder / "runs" / outcome.run_id
    assert load_run(url)["status"] == "completed"


def test_resuming_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "run.db"
    with pytest.raises(DatabaseError, match="no database at"):
        resume_run(f"sqlite:///{missing}", {}, show_progress=False)
    assert not (tmp_path / "nowhere").exists()


def test_a_run_on_postgres_records_what_it_records_on_sqlite(
    tmp_path: Path, postgres_url: str
) -> None:
    def run_into(name: str, database: str | None) -> dict[str, Any]:
        folder = tmp_path / name
        folder.mkdir()
        write_population(folder, 12, chain=False)
        path = scenario_file(folder, SEEDED.format(seed=8))
        outcome = start_run(
            path,
            RunOptions(out=folder / "runs", database=database),
            {},
            llm=client_for(server, folder, cache=False),
            show_progress=False,
        )
        return load_run(outcome.database)

    with FakeOpenAIServer() as server:
        server.configure(responder=seeded_answer)
        on_sqlite = run_into("sqlite", None)
        on_postgres = run_into("postgres", postgres_url)
    assert on_sqlite["interactions"] and on_sqlite == on_postgres
