"""Issue 18 items 3-4: targets and segments that match nobody are said out loud (validate
--population, run, report), and the report does not pass any output off as a forecast (the
embedded model's caveat, word-less reactions invalid, small-n intervals and a note)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from personahub.llm import LLMClient, load_settings
from personahub.llm.backends import LOCAL_MODEL_NAME
from personahub.llm.testing import FunctionBackend
from sandbox.cli.app import app as sandbox_app
from sandbox.forecast.stats import SMALL_N, share_estimates
from sandbox.report import print_summary, write_report
from sandbox.run_options import RunOptions
from sandbox.rundb import RunDatabase
from sandbox.runner import start_run
from tests.support.runs import (
    DEFAULT_SCENARIO,
    make_run,
    personas,
    responder_backend,
    varied_responder,
)

# A third event targeted at an attribute no test persona has, and a segment no one has.
MISSING = DEFAULT_SCENARIO.replace(
    "interaction:",
    "  - {step: 1, channel: targeted, source: a flyer, content: 'Students ride free.',\n"
    "     target: {attributes: {income: low}}}\ninteraction:",
).replace("segments: [age_band, community]", "segments: [age_band, income]")


def _scenario(tmp_path: Path, text: str) -> Path:
    (tmp_path / "people.jsonl").write_text("\n".join(json.dumps(p) for p in personas()) + "\n")
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- item 3


def test_validate_population_names_targets_and_segments_matching_nobody(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path, MISSING)
    result = CliRunner().invoke(sandbox_app, ["validate", str(scenario), "--population"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.replace("│", " ").split())
    assert "timeline[0] (step 0, broadcast) reaches 16 agent(s)" in out
    assert "timeline[2] (step 1, targeted) reaches 0 agent(s)" in out
    assert "timeline[2] (step 1, targeted): the target matches no persona" in out
    assert "no persona has the attribute 'income'" in out
    assert "segments: no persona has the attribute 'income'" in out
    # Without the flag nothing is loaded, and nothing is said about the population.
    plain = CliRunner().invoke(sandbox_app, ["validate", str(scenario)])
    assert plain.exit_code == 0 and "reaches" not in plain.output


@pytest.fixture(scope="module")
def missing_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A run of :data:`MISSING`, and what it printed on stderr before its first step."""
    tmp = tmp_path_factory.mktemp("missing")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        db, run_id = make_run(tmp, MISSING)
    return db, run_id, err.getvalue()


def test_run_warns_before_the_first_step(missing_run: tuple[Path, str, str]) -> None:
    printed = " ".join(missing_run[2].split())
    assert "warning: timeline[2] (step 1, targeted): the target matches no persona" in printed
    assert "warning: segments: no persona has the attribute 'income'" in printed


def test_report_says_how_many_agents_each_event_reached(
    missing_run: tuple[Path, str, str],
) -> None:
    db, run_id, _ = missing_run
    html = write_report(db, run_id).read_text()
    assert 'id="event-reach-0"' in html and '<td class="n">16</td>' in html
    assert 'id="event-reach-2" class="bad"' in html
    assert "timeline[2] (step 1, targeted): reached no agent" in html
    assert "segment income: no agent has this attribute" in html
    console = Console(record=True, width=200)
    print_summary(db, run_id, console=console)
    text = console.export_text()
    assert "warning: timeline[2] (step 1, targeted): reached no agent" in text
    assert "timeline[2] (step 1, targeted) reached 0" in text


# --------------------------------------------------------------------------- item 4


def test_the_embedded_model_gets_a_visible_caveat(tmp_path: Path) -> None:
    db, run_id = make_run(tmp_path / "served")
    assert "plumbing, not a forecaster" not in write_report(db, run_id).read_text()
    # The same run answered by a stand-in recorded as the embedded model.
    scenario = _scenario(tmp_path, DEFAULT_SCENARIO)
    backend = FunctionBackend(
        responder_backend(varied_responder).function, model=LOCAL_MODEL_NAME, name="local"
    )
    client = LLMClient(load_settings(cache=False, max_retries=0), backend=backend)
    outcome = start_run(
        scenario, RunOptions(out=tmp_path / "runs"), {}, show_progress=False, llm=client
    )
    html = write_report(outcome.database, outcome.run_id).read_text()
    assert 'id="notice-embedded-model"' in html and "plumbing, not a forecaster" in html
    console = Console(record=True, width=200)
    print_summary(outcome.database, outcome.run_id, console=console)
    text = console.export_text()
    assert "caveat:" in text and "plumbing, not a forecaster" in text


def test_wordless_reactions_are_invalid_answers_and_reasked(tmp_path: Path) -> None:
    def respond(body: dict) -> object:
        answer = varied_responder(body)
        if isinstance(answer, dict) and "reaction" in answer:
            text = " ".join(str(m.get("content", "")) for m in body["messages"])
            if "Persona 00:" in text:
                answer["reaction"] = "🙂👍"  # always: fails after the re-ask
            elif "Persona 01:" in text and "could not be used" not in text:
                answer["reaction"] = "   "  # once: the re-ask gets words
        return answer

    db, run_id = make_run(tmp_path, responder=respond, population=personas(16))
    database = RunDatabase(db)
    rows = database.interactions(run_id)
    agents = {a.agent_id: a for a in database.agents(run_id)}
    database.close()
    by_persona: dict[str, list] = {}
    for row in rows:
        by_persona.setdefault(agents[row.agent_id].persona[:10], []).append(row)
    emoji = by_persona["Persona 00"]
    assert emoji and all(r.error_kind == "empty_answer" for r in emoji)
    assert "reaction" in (emoji[0].error_message or "")
    blank = by_persona["Persona 01"]
    assert blank and all(r.error_kind is None and r.retries >= 1 for r in blank)
    assert all(r.reaction.strip() for r in blank)


def test_small_n_shares_get_wilson_intervals_and_a_note(tmp_path: Path) -> None:
    all_yes = share_estimates(np.array([[1.0, 1.0, 1.0]]))[0]
    # A percentile bootstrap says 100-100%: Wilson's leaves room for doubt.
    assert all_yes.value == 1.0 and all_yes.high == 1.0 and all_yes.low < 0.5
    assert all_yes.note == "n too small to conclude"
    many = share_estimates(np.array([[1.0, 0.0] * SMALL_N]))[0]
    assert many.note == "" and 0.35 < many.low < 0.5 < many.high < 0.65
    db, run_id = make_run(tmp_path)  # 16 agents
    html = write_report(db, run_id).read_text()
    assert "n too small to conclude" in html and "Wilson" in html
