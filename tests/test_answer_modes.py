"""Forecast answer modes `sample`, `logprobs`, `verbalized` (issue 12 item 3): distributions
per agent through ``final_distributions``, seeded replay and resume."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from sandbox.forecast.agent import Observation
from sandbox.forecast.answer_modes import DISTRIBUTIONS_KEY, option_hint, option_request
from sandbox.forecast.distributions import final_distributions
from sandbox.forecast.scenario import ChoiceQuestion
from sandbox.run_options import RunOptions
from sandbox.rundb import RunDatabase
from sandbox.runner import resume_run, start_run
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.runs import DEFAULT_SCENARIO, make_run, request_schema, varied_responder
from tests.test_sandbox_model import (
    SEEDED,
    client_for,
    load_run,
    scenario_file,
    write_population,
)

OPTIONS = {"intent": ["yes", "maybe", "no"], "price_ok": ["1", "2", "3", "4", "5"]}


def with_mode(mode: str, text: str = DEFAULT_SCENARIO) -> str:
    return text.replace("seed: 5\n", f"seed: 5\nanswer_mode: {mode}\n")


def latest_rows(db_path: Path, run_id: str) -> dict[int, dict[str, Any]]:
    """Each agent's latest good ``parsed``."""
    database = RunDatabase(db_path)
    out: dict[int, dict[str, Any]] = {}
    for row in sorted(database.interactions(run_id), key=lambda r: r.step):
        if row.error_kind is None and isinstance(row.parsed, dict):
            out[row.agent_id] = row.parsed
    return out


def check_distributions(found: dict[int, dict[str, dict[str, float]]]) -> None:
    assert found
    for per_question in found.values():
        assert set(per_question) == set(OPTIONS)
        for qid, probs in per_question.items():
            assert list(probs) == OPTIONS[qid]
            assert sum(probs.values()) == pytest.approx(1.0)


def test_sample_mode_distributions_are_one_hot_on_the_latest_answer(tmp_path: Path) -> None:
    db_path, run_id = make_run(tmp_path)
    found = final_distributions(RunDatabase(db_path), run_id)
    check_distributions(found)
    rows = latest_rows(db_path, run_id)
    assert set(found) == set(rows)
    for agent_id, parsed in rows.items():
        assert DISTRIBUTIONS_KEY not in parsed
        assert found[agent_id]["intent"][parsed["intent"]] == 1.0
        assert found[agent_id]["price_ok"][str(parsed["price_ok"])] == 1.0


def test_logprobs_mode_carries_a_distribution_and_draws_the_answer_from_it(
    tmp_path: Path,
) -> None:
    db_path, run_id = make_run(tmp_path, with_mode("logprobs"))
    database = RunDatabase(db_path)
    found = final_distributions(database, run_id)
    check_distributions(found)
    rows = latest_rows(db_path, run_id)
    for agent_id, parsed in rows.items():
        stored = parsed[DISTRIBUTIONS_KEY]
        assert stored["intent"]["method"] == "logprobs"
        assert found[agent_id]["intent"] == stored["intent"]["probs"]
        assert found[agent_id]["intent"][parsed["intent"]] > 0  # drawn from it
        assert isinstance(parsed["price_ok"], int)
        assert isinstance(parsed["spend"], int | float) and parsed["wish"]  # still asked
    distinct = {json.dumps(d["intent"]) for d in found.values()}
    assert len(distinct) > 1  # per agent, not one shared distribution
    # The step's structured request no longer asks the choice and likert questions; one
    # option request per such question goes with it, and its tokens count in the row.
    row = next(r for r in database.interactions(run_id) if r.error_kind is None)
    assert '"intent"' not in row.messages[-1]["content"]
    assert '"spend"' in row.messages[-1]["content"]


def verbalized_responder(body: dict[str, Any]) -> Any:
    """States fixed percentages (summing to 80, not 100) for the distribution questions."""
    answer = varied_responder(body)
    props = request_schema(body).get("properties") or {}
    if "intent" in props:
        answer["intent"] = {"yes": 40, "maybe": 0, "no": 40}
        answer["price_ok"] = {"1": 0, "2": 10, "3": 10, "4": 20, "5": 40}
    return answer


def test_verbalized_mode_normalises_stated_percentages(tmp_path: Path) -> None:
    db_path, run_id = make_run(tmp_path, with_mode("verbalized"), verbalized_responder)
    found = final_distributions(RunDatabase(db_path), run_id)
    check_distributions(found)
    for per_question in found.values():
        assert per_question["intent"] == {"yes": 0.5, "maybe": 0.0, "no": 0.5}
        assert per_question["price_ok"] == pytest.approx(
            {"1": 0.0, "2": 0.125, "3": 0.125, "4": 0.25, "5": 0.5}
        )
    for parsed in latest_rows(db_path, run_id).values():
        assert parsed["intent"] in ("yes", "no")  # never the option stated at 0%
        assert parsed[DISTRIBUTIONS_KEY]["intent"]["method"] == "verbalized"


def test_verbalized_answers_with_no_chance_anywhere_are_reasked(tmp_path: Path) -> None:
    def responder(body: dict[str, Any]) -> Any:
        answer = verbalized_responder(body)
        if "intent" in (request_schema(body).get("properties") or {}):
            answer["intent"] = {"yes": 0, "maybe": 0, "no": 0}
        return answer

    db_path, run_id = make_run(tmp_path, with_mode("verbalized"), responder)
    rows = RunDatabase(db_path).interactions(run_id)
    assert rows and all(r.error_kind == "schema_violation" for r in rows)
    assert final_distributions(RunDatabase(db_path), run_id) == {}


def option_answer(body: dict[str, Any]) -> str:
    """A reply that depends on the request seed only: for option requests (logprobs asked)
    a label, whose first token the fixture server reports as certain."""
    digest = int(hashlib.sha256(str(body.get("seed")).encode()).hexdigest(), 16)
    if body.get("logprobs"):
        text = body["messages"][-1]["content"]
        return ["yes", "maybe", "no"][digest % 3] if "subscribe" in text else str(1 + digest % 5)
    return json.dumps({"reaction": f"reaction {digest % 97}", "post": "look" if digest % 2 else ""})


def run_logprobs(tmp_path: Path, name: str, server: FakeOpenAIServer) -> str:
    folder = tmp_path / name
    folder.mkdir()
    write_population(folder, 20, chain=False)
    text = SEEDED.format(seed=9).replace("steps: 3\n", "steps: 3\nanswer_mode: logprobs\n")
    outcome = start_run(
        scenario_file(folder, text),
        RunOptions(out=folder / "runs"),
        {},
        llm=client_for(server, folder, cache=False),
        show_progress=False,
    )
    return outcome.database


def test_logprobs_mode_replays_and_resumes_exactly(tmp_path: Path, monkeypatch) -> None:
    with FakeOpenAIServer() as server:
        server.configure(responder=option_answer)
        reference = load_run(run_logprobs(tmp_path, "whole", server))
        assert load_run(run_logprobs(tmp_path, "again", server)) == reference

        real_commit = RunDatabase.commit_step

        def crash_at_step_2(self, run_id, step, **kwargs):  # type: ignore[no-untyped-def]
            if step == 2:
                raise KeyboardInterrupt
            return real_commit(self, run_id, step, **kwargs)

        monkeypatch.setattr(RunDatabase, "commit_step", crash_at_step_2)
        with pytest.raises(KeyboardInterrupt):
            run_logprobs(tmp_path, "crashed", server)
        monkeypatch.setattr(RunDatabase, "commit_step", real_commit)
        db_path = next((tmp_path / "crashed" / "runs").glob("*/run.db"))
        llm = client_for(server, tmp_path / "crashed", cache=False)
        outcome = resume_run(db_path, {}, llm=llm, show_progress=False)
    assert outcome.status == "completed"
    resumed = load_run(str(db_path))
    assert resumed == reference
    distributions = [p[DISTRIBUTIONS_KEY] for _, _, p, *_ in reference["interactions"] if p]
    assert distributions and all(d["fair"]["method"] == "logprobs" for d in distributions)
    assert any(state["distributions"] for _, state in reference["states"].values())


def test_option_prompts_of_two_agents_share_everything_before_the_persona() -> None:
    # The layout that lets the embedded model reuse one evaluated prefix across a survey's
    # respondents: the system message is the same for everyone, and the user message is what
    # they were shown, then the persona, then the question.
    context = {"summary": "", "memory": [], "new": [Observation(0, "event", "news", "A launch.")]}
    question = ChoiceQuestion(id="intent", type="choice", ask="Buy it?", options=["yes", "no"])
    personas = ("A night-shift nurse who cycles.", "A retired farmer who distrusts ads.")
    first, second = (option_request(p, context, question, 7).messages for p in personas)
    assert first[0] == second[0] and personas[0] not in first[0]["content"]
    texts = [messages[1]["content"] for messages in (first, second)]
    shared = texts[0].index(personas[0])
    assert texts[0][:shared] == texts[1][:shared] and "A launch." in texts[0][:shared]
    assert texts[0].replace(personas[0], "") == texts[1].replace(personas[1], "")
    assert texts[0].index("Buy it?") > shared  # the question after the persona


def test_option_hint_keeps_labels_with_commas_apart() -> None:
    plain = ChoiceQuestion(id="q", ask="Vote?", type="choice", options=["yes", "no"])
    assert option_hint(plain) == "Answer with exactly one of: yes, no."
    labelled = plain.model_copy(update={"options": ["yes, for him", "no, against him"]})
    assert option_hint(labelled) == "Answer with exactly one of: yes, for him; no, against him."
