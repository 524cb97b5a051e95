"""`sandbox run --population PATH|URL` runs a scenario on other personas without editing its YAML
(issue 18, item 10)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from personahub.llm import LLMClient, load_settings
from sandbox.run_folders import RunError
from sandbox.run_options import RunOptions, effective_scenario
from sandbox.rundb import RunDatabase
from sandbox.runner import start_run
from sandbox.scenario_loader import load_scenario
from tests.support.runs import responder_backend, varied_responder

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "scenarios" / "product_launch.yaml"


def _client() -> LLMClient:
    settings = load_settings(backend="openai", model="fake-model", cache=False, max_retries=0)
    return LLMClient(settings, backend=responder_backend(varied_responder, settings.model_name))


def test_population_file_relative_to_the_shell_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = [{"persona": f"A beekeeper number {i} who sells honey at markets."} for i in range(6)]
    (tmp_path / "mine.jsonl").write_text("\n".join(json.dumps(p) for p in people) + "\n")
    monkeypatch.chdir(tmp_path)
    options = RunOptions(out=tmp_path / "runs", population="mine.jsonl", agents=4, steps=1)
    outcome = start_run(SCENARIO, options, {}, show_progress=False, llm=_client())
    database = RunDatabase(outcome.database, must_exist=True)
    agents = database.agents(outcome.run_id)
    assert len(agents) == 4
    assert all("beekeeper" in agent.persona for agent in agents)
    run = database.run()
    assert run is not None
    stored = yaml.safe_load(run.scenario_yaml)["population"]
    assert stored["source"] == str(tmp_path / "mine.jsonl")
    database.close()


def test_missing_population_file_is_one_line(tmp_path: Path) -> None:
    options = RunOptions(population=str(tmp_path / "nope.jsonl"))
    with pytest.raises(RunError) as caught:
        effective_scenario(load_scenario(SCENARIO), options)
    assert str(caught.value) == (
        f"--population {tmp_path / 'nope.jsonl'}: file not found: {tmp_path / 'nope.jsonl'}"
    )


def test_scenario_file_columns_do_not_follow_another_source(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    text = SCENARIO.read_text().replace("population:", "population:\n  text_field: bio\n", 1)
    scenario.write_text(text)
    (tmp_path / "other.jsonl").write_text(json.dumps({"persona": "A ferry captain."}) + "\n")
    changed = effective_scenario(
        load_scenario(scenario), RunOptions(population=str(tmp_path / "other.jsonl"))
    )
    assert changed.population.text_field is None
    assert changed.population.source == str(tmp_path / "other.jsonl")


def test_population_url_password_is_not_recorded(tmp_path: Path, postgres_url: str) -> None:
    from sqlalchemy.engine import make_url

    from personahub.store.io import import_file
    from personahub.store.store import PersonaStore

    people = tmp_path / "people.jsonl"
    people.write_text(
        "\n".join(json.dumps({"persona": f"A tram driver, number {i}."}) for i in range(5)) + "\n"
    )
    store = PersonaStore(postgres_url)
    import_file(store, people)
    store.close()
    password = make_url(postgres_url).password
    assert password
    options = RunOptions(out=tmp_path / "runs", population=postgres_url, agents=3, steps=1)
    outcome = start_run(SCENARIO, options, {}, show_progress=False, llm=_client())
    database = RunDatabase(outcome.database, must_exist=True)
    run = database.run()
    assert run is not None
    assert password not in run.scenario_yaml
    assert "***" in yaml.safe_load(run.scenario_yaml)["population"]["source"]
    database.close()
