"""The run database on SQLite and PostgreSQL: writing steps, reading them back, upserted agent
states, ordering, several runs in one database, values PostgreSQL stores differently."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from personahub.db.engine import DatabaseError, make_engine
from sandbox.rundb import PLAYER_ID, RunDatabase, RunRow

MT_STATE = [3, [2**32 - 1, *range(623), 624], None]  # random.getstate() shape, big ints


def _run(run_id: str, **fields: Any) -> RunRow:
    values: dict[str, Any] = {
        "id": run_id,
        "name": "recorder-test",
        "scenario_yaml": "name: recorder-test\n",
        "scenario_hash": "s" * 16,
        "config_hash": "c" * 16,
        "seed": 7,
        "backend": "openai",
        "model": "fake-model",
        "llm_config": {"base_urls": ["http://a/v1", "http://b/v1"]},
        "steps_total": 3,
    }
    values.update(fields)
    return RunRow(**values)


def _agents(run_id: str, n: int) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run_id,
            "agent_id": i,
            "persona_id": f"p{i}",
            "persona": f"Persona {i}, who says «ça va» and 你好.",
            "attributes": {"group": "even" if i % 2 == 0 else "odd", "tags": ["a", i]},
            "community": i % 2,
            "degree": 1,
            "system_prompt": f"You are persona {i}.",
            "profile": {"mood": "calm"} if i == 0 else {},
        }
        for i in range(n)
    ]


def _step(database: RunDatabase, run_id: str, step: int, agents: int, **extra: Any) -> None:
    interactions = [
        {
            "run_id": run_id,
            "step": step,
            "agent_id": agent,
            "messages": [{"role": "user", "content": f"step {step}"}],
            "raw_response": '{"intent": "yes"}',
            "parsed": None if agent == 1 else {"intent": "yes", "fair": 1 + agent % 5},
            "reaction": "ok",
            "post": "pass it on" if agent == 0 else "",
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "latency_s": 0.25,
            "retries": agent % 2,
            "cached": agent == 2,
            "error_kind": "schema_violation" if agent == 1 else None,
            "error_message": "missing field 'fair'" if agent == 1 else None,
        }
        for agent in range(agents)
    ]
    messages = [
        {
            "run_id": run_id,
            "step": step,
            "kind": "post",
            "src_agent": 0,
            "dst_agent": 1,
            "relation": "friend",
            "source": "",
            "content": f"post at {step}",
        },
        {
            "run_id": run_id,
            "step": step,
            "kind": "event",
            "src_agent": None,
            "dst_agent": 0,
            "relation": "",
            "source": "the news",
            "content": "news",
        },
    ]
    states = [
        {"run_id": run_id, "agent_id": a, "step": step, "state": {"seen": step}}
        for a in range(agents)
    ]
    database.commit_step(
        run_id,
        step,
        interactions=interactions,
        messages=messages,
        states=states,
        metrics={"aware": step / 2, "intent:yes": None, **extra.pop("metrics", {})},
        rng_state=MT_STATE,
        usage={"calls": agents * (step + 1), "per_endpoint": {"http://a/v1": {"calls": 1}}},
        **extra,
    )


@pytest.fixture
def database(db_url: str) -> Iterator[RunDatabase]:
    opened = RunDatabase(db_url)
    yield opened
    opened.close()


def test_steps_round_trip(database: RunDatabase) -> None:
    database.create_run(
        _run("r1"),
        _agents("r1", 3),
        [{"run_id": "r1", "src": 0, "dst": 1, "relation": "friend", "strength": 0.5}],
    )
    for step in range(3):
        _step(database, "r1", step, agents=3)
    database.set_status("r1", "completed", {"calls": 9, "failovers": 1})

    run = database.run("r1")
    assert run is not None
    assert (run.status, run.last_step, run.rng_state) == ("completed", 2, MT_STATE)
    assert run.usage == {"calls": 9, "failovers": 1}
    assert run.llm_config == {"base_urls": ["http://a/v1", "http://b/v1"]}
    assert run.created.tzinfo is not None and run.created <= datetime.now(UTC)

    agents = database.agents("r1")
    assert [a.agent_id for a in agents] == [0, 1, 2]
    assert agents[0].persona.endswith("«ça va» and 你好.") and agents[0].profile == {"mood": "calm"}
    assert agents[1].attributes == {"group": "odd", "tags": ["a", 1]}
    assert [(e.src, e.dst, e.strength) for e in database.edges("r1")] == [(0, 1, 0.5)]

    rows = database.interactions("r1")
    assert [(r.step, r.agent_id) for r in rows] == [(s, a) for s in range(3) for a in range(3)]
    failed = [r for r in rows if r.error_kind]
    assert len(failed) == 3 and all(r.parsed is None for r in failed)
    assert rows[0].parsed == {"intent": "yes", "fair": 1} and rows[2].cached is True
    assert all(isinstance(r.id, int) for r in rows)
    assert [r.id for r in rows] == sorted(r.id for r in rows if r.id is not None)

    assert [m.content for m in database.messages("r1", "post")] == [
        f"post at {s}" for s in range(3)
    ]
    assert [m.source for m in database.messages("r1", "event")] == ["the news"] * 3
    # One state per agent, the last step's, however many steps wrote one.
    assert database.states("r1") == {a: (2, {"seen": 2}) for a in range(3)}
    metrics = database.step_metrics("r1")
    assert [m.step for m in metrics] == [0, 1, 2]
    assert metrics[1].metrics == {"aware": 0.5, "intent:yes": None}


def test_runs_share_a_database_and_the_latest_is_default(database: RunDatabase) -> None:
    database.create_run(
        _run("old", created=datetime(2024, 1, 1, tzinfo=UTC)), _agents("old", 2), []
    )
    database.create_run(_run("new"), _agents("new", 2), [])
    _step(database, "old", 0, agents=2)
    _step(database, "new", 0, agents=2)
    latest = database.run()
    assert latest is not None and latest.id == "new"
    assert {r.run_id for r in database.interactions("old")} == {"old"}
    assert database.run("missing") is None


def test_dialogue_turns_in_order(database: RunDatabase) -> None:
    database.create_run(_run("d"), _agents("d", 2), [])
    turns = [
        {
            "run_id": "d",
            "step": 0,
            "conversation": conversation,
            "turn": turn,
            "speaker": PLAYER_ID if turn % 2 == 0 else 1,
            "listener": 1 if turn % 2 == 0 else PLAYER_ID,
            "topic": "the harbour",
            "content": f"c{conversation} t{turn}",
        }
        for conversation in (1, 0)
        for turn in (2, 0, 1)
    ]
    _step(database, "d", 0, agents=2, turns=turns)
    got = [(t.conversation, t.turn, t.speaker) for t in database.dialogue_turns("d")]
    assert got == [(c, t, PLAYER_ID if t % 2 == 0 else 1) for c in (0, 1) for t in (0, 1, 2)]


def test_non_finite_metrics_are_stored(database: RunDatabase) -> None:
    # PostgreSQL's json type rejects NaN; it is stored as null there, as NaN on SQLite.
    database.create_run(_run("n"), _agents("n", 1), [])
    _step(database, "n", 0, agents=1, metrics={"odd": float("nan")})
    value = database.step_metrics("n")[0].metrics["odd"]
    if database.engine.dialect.name == "postgresql":
        assert value is None
    else:
        assert math.isnan(value)


def test_reopening_keeps_everything(db_url: str) -> None:
    first = RunDatabase(db_url)
    first.create_run(_run("keep"), _agents("keep", 2), [])
    _step(first, "keep", 0, agents=2)
    first.close()
    again = RunDatabase(db_url, must_exist=True)
    assert [r.agent_id for r in again.interactions("keep")] == [0, 1]
    again.close()


def test_unreachable_postgres_hides_the_password() -> None:
    secret = "hunter2-not-logged"
    url = f"postgresql://someone:{secret}@127.0.0.1:9/nowhere"
    with pytest.raises(DatabaseError) as err:
        make_engine(url)
    assert secret not in str(err.value) and "***" in str(err.value)
    with pytest.raises(DatabaseError) as err:
        RunDatabase(url)
    assert secret not in str(err.value)
