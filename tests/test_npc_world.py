"""NPC worlds against the fixture server: profiles, turn order, relationships, resume."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from personahub.llm import LLMClient, load_settings
from sandbox.export import export_run
from sandbox.run_options import RunOptions
from sandbox.rundb import PLAYER_ID, RunDatabase
from sandbox.runner import resume_run, start_run
from sandbox.scenario_loader import ScenarioError, load_scenario
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.runs import make_run, personas, request_schema

SCENARIO = """\
name: test-harbour
mode: npc_world
seed: 3
population: {source: people.jsonl, sample: 6}
graph: {type: watts_strogatz, k: 2, p: 0.0, relation: neighbour}
steps: 2
timeline:
  - {step: 0, source: the quay, content: a boat sank by the lighthouse.}
dialogue: {conversations_per_step: 2, turns: 4}
player:
  name: the stranger
  lines:
    - {step: 0, to: persona 03, say: "Who saw the keeper last?"}
    - {step: 0, to: persona 03, say: "And where did he go?"}
"""


def npc_responder(fail_speaker: str | None = None):
    """Profiles named after the persona; each line names its speaker and its turn number."""

    def respond(body: dict[str, Any]) -> Any:
        props = request_schema(body).get("properties") or {}
        last = str(body["messages"][-1]["content"])
        if "backstory" in props:
            number = re.search(r"Persona (\d+)", last).group(1)  # type: ignore[union-attr]
            return {
                "name": f"Npc {number}",
                "role": "dock worker",
                "backstory": f"Born in the harbour as persona {number}.",
                "goals": ["find the keeper"],
                "speaking_style": "curt",
                "player_interaction": "trades rumours",
            }
        if "feeling" in props:
            speaker = re.search(r"You are (Npc \d+)", body["messages"][0]["content"]).group(1)  # type: ignore[union-attr]
            turn = last.count("\n", last.find("The conversation so far:")) - 2
            turn = 0 if "You speak first." in last else max(turn, 1)
            if speaker == fail_speaker:
                return "not json at all"
            return {"say": f"{speaker} says line {turn}", "feeling": "warmer", "end": False}
        raise AssertionError(f"unexpected request {sorted(props)}")

    return respond


def client_for(server: FakeOpenAIServer) -> LLMClient:
    return LLMClient(
        load_settings(
            backend="openai", base_urls=[server.base_url], api_key="k", cache=False, max_retries=0
        )
    )


def _people() -> list[dict[str, Any]]:
    return personas(6)


def _conversations(db: RunDatabase, run_id: str) -> dict[int, list[Any]]:
    grouped: dict[int, list[Any]] = defaultdict(list)
    for turn in db.dialogue_turns(run_id):
        grouped[turn.conversation].append(turn)
    return grouped


def test_turns_alternate_in_order_and_the_player_says_its_lines(tmp_path):
    db_path, run_id = make_run(tmp_path, SCENARIO, npc_responder(), _people())
    db = RunDatabase(db_path, must_exist=True)
    agents = {a.agent_id: a for a in db.agents(run_id)}
    assert {a.profile["name"] for a in agents.values()} == {f"Npc {i:02d}" for i in range(6)}
    assert all("You are Npc" in a.system_prompt for a in agents.values())
    # Each NPC knows its graph neighbours by name and relation (a ring: two each).
    for agent in agents.values():
        assert len(agent.profile["relationships"]) == 2
        assert (
            "People you know: Npc" in agent.system_prompt and "(neighbour)" in agent.system_prompt
        )

    conversations = _conversations(db, run_id)
    by_step: dict[int, list[list[Any]]] = defaultdict(list)
    for turns in conversations.values():
        by_step[turns[0].step].append(turns)
        assert [t.turn for t in turns] == list(range(len(turns)))
        first, second = turns[0].speaker, turns[0].listener
        assert [t.speaker for t in turns] == [first, second] * (len(turns) // 2)
        assert all(t.listener == (second if t.speaker == first else first) for t in turns)
        assert len(turns) == 4 and not any(t.error_kind for t in turns)
    for step, group in by_step.items():
        people = [p for turns in group for p in (turns[0].speaker, turns[0].listener)]
        assert len(people) == len(set(people)), f"an NPC is in two conversations at step {step}"
        assert len(group) <= 2 + (step == 0)

    player = [turns for turns in conversations.values() if turns[0].speaker == PLAYER_ID]
    assert len(player) == 1
    lines = player[0]
    assert [t.content for t in lines[::2]] == ["Who saw the keeper last?", "And where did he go?"]
    npc = agents[lines[1].speaker]
    assert npc.persona.startswith("Persona 03")
    assert [t.content for t in lines[1::2]] == ["Npc 03 says line 1", "Npc 03 says line 3"]
    assert "a boat sank" in lines[0].topic or "keeper" in lines[0].topic

    states = db.states(run_id)
    talked = [rel for _, state in states.values() for rel in state["relations"].values()]
    assert talked and all(rel["attitude"] > 0 and rel["talks"] >= 1 for rel in talked)
    memories = [m for _, state in states.values() for m in state["memory"]]
    assert any("a boat sank" in m for m in memories)


def test_npc_dialogues_export_one_side_per_npc(tmp_path):
    db_path, run_id = make_run(tmp_path, SCENARIO, npc_responder(), _people())
    db = RunDatabase(db_path, must_exist=True)
    conversations = _conversations(db, run_id)
    npc_sides = sum(
        len({t.speaker for t in turns if t.speaker != PLAYER_ID})
        for turns in conversations.values()
    )
    out = tmp_path / "npc.jsonl"
    report = export_run(db_path, out, "openai", role="npc", dedup=False)
    records = [json.loads(line) for line in out.open()]
    assert report.kept == len(records) == npc_sides
    for record in records:
        roles = [m["role"] for m in record["messages"]]
        assert roles[0] == "system" and "You are Npc" in record["messages"][0]["content"]
        assert roles[1:] == ["user", "assistant"] * ((len(roles) - 1) // 2)
        speaker = re.search(r"You are (Npc \d+)", record["messages"][0]["content"]).group(1)  # type: ignore[union-attr]
        assert all(
            m["content"].startswith(speaker) for m in record["messages"] if m["role"] == "assistant"
        )


def test_a_failed_turn_ends_its_conversation_and_the_run_goes_on(tmp_path):
    db_path, run_id = make_run(tmp_path, SCENARIO, npc_responder("Npc 03"), _people())
    db = RunDatabase(db_path, must_exist=True)
    assert db.run(run_id).status == "completed"
    conversations = _conversations(db, run_id).values()
    failed = [turns for turns in conversations if any(t.error_kind for t in turns)]
    assert failed
    for turns in failed:
        assert turns[-1].error_kind is not None and turns[-1].content == ""
        assert all(t.error_kind is None for t in turns[:-1])
    assert any(len(turns) == 4 for turns in conversations)


def test_resume_after_a_crash_gives_the_same_dialogues(tmp_path, monkeypatch):
    def dialogues(db_path: Path) -> list[tuple]:
        db = RunDatabase(db_path, must_exist=True)
        run = db.run()
        return [
            (t.step, t.conversation, t.turn, t.speaker, t.listener, t.content)
            for t in db.dialogue_turns(run.id)
        ]

    whole, _ = make_run(tmp_path / "whole", SCENARIO, npc_responder(), _people())
    folder = tmp_path / "crashed"
    make_run(folder, SCENARIO, npc_responder(), _people())  # writes people.jsonl + scenario
    scenario = folder / "test-harbour.yaml"
    real_commit = RunDatabase.commit_step

    def crash_at_step_1(self, run_id, step, **kwargs):  # type: ignore[no-untyped-def]
        if step == 1:
            raise KeyboardInterrupt
        return real_commit(self, run_id, step, **kwargs)

    with FakeOpenAIServer(responder=npc_responder()) as server:
        monkeypatch.setattr(RunDatabase, "commit_step", crash_at_step_1)
        with pytest.raises(KeyboardInterrupt):
            start_run(
                scenario,
                RunOptions(out=folder / "again"),
                {},
                llm=client_for(server),
                show_progress=False,
            )
        monkeypatch.setattr(RunDatabase, "commit_step", real_commit)
        db_path = next((folder / "again").glob("*/run.db"))
        outcome = resume_run(db_path, {}, llm=client_for(server), show_progress=False)
    assert outcome.status == "completed"
    assert dialogues(db_path) == dialogues(whole)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ('questions: [{id: q, type: text, ask: "Why?"}]\n', "questions are for forecast mode"),
        ("world: missing.yaml\n", "world file not found"),
        (None, "player.lines[0].step"),
    ],
)
def test_npc_world_scenario_errors_name_the_field(tmp_path, change, message):
    text = SCENARIO + change if change else SCENARIO.replace("{step: 0, to:", "{step: 5, to:", 1)
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=re.escape(message)):
        load_scenario(path)


def test_forecast_scenarios_still_need_questions_and_events(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nsteps: 2\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert "expected at least 1 question" in str(info.value)
    assert "expected at least 1 event" in str(info.value)


def test_a_repeated_line_ends_the_conversation_unrecorded(tmp_path):
    base = npc_responder()

    def respond(body):
        out = base(body)
        if isinstance(out, dict) and "feeling" in out:
            out["say"] = "The fog is thick again tonight, isn't it?"
        return out

    db_path, run_id = make_run(
        tmp_path, SCENARIO.replace("player:", "unused:", 0), respond, _people()
    )
    db = RunDatabase(db_path, must_exist=True)
    for turns in _conversations(db, run_id).values():
        said = [t.content for t in turns if t.speaker != PLAYER_ID]
        assert len(said) == len(set(said)) == 1
    metrics = [row.metrics for row in db.step_metrics(run_id)]
    assert sum(m["repeats_cut"] for m in metrics) >= 1


def test_a_player_with_a_goal_is_spoken_for_by_the_model(tmp_path):
    base = npc_responder()

    def respond(body):
        system = body["messages"][0]["content"]
        if "Your goal: find the keeper" in system:
            later = "The conversation so far" in body["messages"][-1]["content"]
            say = "Then who keeps the light now?" if later else "Have you seen the keeper?"
            return {"say": say, "feeling": "same", "end": False}
        return base(body)

    scenario = SCENARIO.split("player:")[0] + (
        "player: {name: the stranger, goal: find the keeper}\n"
    )
    db_path, run_id = make_run(tmp_path, scenario, respond, _people())
    db = RunDatabase(db_path, must_exist=True)
    player = [t for t in _conversations(db, run_id).values() if t[0].speaker == PLAYER_ID]
    assert len(player) == 2  # one conversation per step
    for turns in player:
        assert [t.speaker == PLAYER_ID for t in turns] == [True, False, True, False]
        assert turns[0].content == "Have you seen the keeper?"
        assert turns[0].topic == "find the keeper"
