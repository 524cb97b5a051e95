"""Resuming a run: the same model, the whole run's usage (issue 17, items 1 and 4)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from personahub.llm import ErrorKind, LLMClient, load_settings
from personahub.llm.backends import BackendCall
from personahub.llm.retry import TransportError
from sandbox.forecast.model import ForecastModel
from sandbox.run_folders import RunError
from sandbox.run_llm import ModelSwitchError
from sandbox.run_options import RunOptions
from sandbox.rundb import RunDatabase
from sandbox.runner import resume_run, start_run
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.runs import (
    DEFAULT_SCENARIO,
    make_run,
    personas,
    responder_backend,
    varied_responder,
)

# No likert question: reports need no embedding model.
SCENARIO = DEFAULT_SCENARIO.replace(
    '  - {id: price_ok, type: likert, ask: "Is the price reasonable?", scale: 5}\n', ""
)


def fake_client(model: str = "fake-model", **settings: Any) -> LLMClient:
    """A gateway on the in-process fake backend, recorded as an ``openai`` run."""
    merged = {"backend": "openai", "model": model, "cache": False, "max_retries": 0} | settings
    return LLMClient(load_settings(**merged), backend=responder_backend(varied_responder, model))


def scenario_in(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "people.jsonl").write_text("\n".join(json.dumps(p) for p in personas()) + "\n")
    path = folder / "scenario.yaml"
    path.write_text(SCENARIO)
    return path


def interrupted_run(folder: Path, monkeypatch: pytest.MonkeyPatch, at_step: int = 2) -> Path:
    """A run killed as step ``at_step`` starts; returns its ``run.db``."""
    real_step = ForecastModel.step

    def step(self: ForecastModel) -> None:
        # the run's own model (the run-start cost estimate steps one without a database)
        if self.database is not None and self.current_step == at_step:
            raise KeyboardInterrupt
        real_step(self)

    with monkeypatch.context() as patch:
        patch.setattr(ForecastModel, "step", step)
        with pytest.raises(KeyboardInterrupt):
            start_run(
                scenario_in(folder),
                RunOptions(out=folder / "runs"),
                {},
                show_progress=False,
                llm=fake_client(),
            )
    return next((folder / "runs").glob("*/run.db"))


def run_usage(db_path: str | Path) -> dict[str, Any]:
    run = RunDatabase(db_path).run()
    assert run is not None
    return run.usage


def test_usage_after_resume_is_the_whole_runs(tmp_path: Path, monkeypatch) -> None:
    whole = start_run(
        scenario_in(tmp_path / "whole"),
        RunOptions(out=tmp_path / "whole" / "runs"),
        {},
        show_progress=False,
        llm=fake_client(),
    )
    db_path = interrupted_run(tmp_path / "parts", monkeypatch)
    before = run_usage(db_path)
    outcome = resume_run(db_path, {}, show_progress=False, llm=fake_client())
    assert outcome.status == "completed"
    reference, resumed = run_usage(whole.database), run_usage(db_path)
    assert 0 < before["calls"] < reference["calls"]
    for key in ("calls", "prompt_tokens", "completion_tokens", "total_tokens"):
        assert resumed[key] == reference[key], key


def served_config(folder: Path, server: FakeOpenAIServer) -> Path:
    """A config file pointing the gateway at the fake server's ``served-model``."""
    path = folder / "served.toml"
    path.write_text(
        f'[llm]\nbackend = "openai"\nbase_urls = ["{server.base_url}"]\n'
        f'model = "served-model"\ncache = false\nmax_retries = 0\n'
    )
    return path


def interrupted_served_run(
    folder: Path, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A run started with ``--config served.toml`` and killed as step 2 starts."""
    real_step = ForecastModel.step

    def step(self: ForecastModel) -> None:
        if self.database is not None and self.current_step == 2:  # not the cost estimate's
            raise KeyboardInterrupt
        real_step(self)

    scenario = scenario_in(folder)
    with monkeypatch.context() as patch:
        patch.setattr(ForecastModel, "step", step)
        with pytest.raises(KeyboardInterrupt):
            start_run(
                scenario,
                RunOptions(out=folder / "runs", agents=4),
                {},
                config_file=served_config(folder, server),
                show_progress=False,
            )
    return next((folder / "runs").glob("*/run.db"))


def test_resume_without_config_continues_on_the_recorded_model(tmp_path: Path, monkeypatch) -> None:
    with FakeOpenAIServer() as server:
        db_path = interrupted_served_run(tmp_path, server, monkeypatch)
        run = RunDatabase(db_path).run()
        assert run is not None
        assert run.llm_config["model"] == "served-model"
        assert run.llm_config["base_urls"] == [server.base_url]
        assert run.llm_config["max_retries"] == 0  # the whole config, not only flags
        asked_before = len(server.requests)
        outcome = resume_run(db_path, {}, show_progress=False)  # no --config
        models = {r["model"] for r in server.requests[asked_before:]}
    assert outcome.status == "completed"
    assert models == {"served-model"}
    run = RunDatabase(db_path).run()
    assert run is not None and (run.backend, run.model) == ("openai", "served-model")


def test_resume_on_another_model_needs_a_flag_and_is_recorded(tmp_path: Path, monkeypatch) -> None:
    with FakeOpenAIServer() as server:
        db_path = interrupted_served_run(tmp_path, server, monkeypatch)
        with pytest.raises(ModelSwitchError, match="--switch-model"):
            resume_run(db_path, {"model": "other-model"}, show_progress=False)
        outcome = resume_run(
            db_path, {"model": "other-model"}, show_progress=False, switch_model=True
        )
    assert outcome.status == "completed"
    run = RunDatabase(db_path).run()
    assert run is not None and run.model == "other-model"
    (switch,) = run.llm_config["model_switches"]
    assert switch["from"] == "openai:served-model" and switch["to"] == "openai:other-model"
    assert switch["at_step"] == 2


def test_a_step_where_no_call_reaches_the_model_stops_the_run_and_resume_redoes_it(
    tmp_path: Path, monkeypatch
) -> None:
    # Issue 17, item 3: a server that goes away mid-run must not leave a "completed" run of
    # errors behind; the failed step is not recorded, and resume runs it once the server works.
    whole = start_run(
        scenario_in(tmp_path / "whole"),
        RunOptions(out=tmp_path / "whole" / "runs"),
        {},
        show_progress=False,
        llm=fake_client(),
    )
    down = {"now": False}
    backend = responder_backend(varied_responder)
    answer = backend.function

    def flaky(call: BackendCall) -> Any:
        if down["now"]:
            raise TransportError(ErrorKind.CONNECTION, "connection refused")
        return answer(call)

    backend.function = flaky
    real_step = ForecastModel.step

    def step(self: ForecastModel) -> None:
        down["now"] = self.database is not None and self.current_step == 1
        real_step(self)

    folder = tmp_path / "parts"
    settings = load_settings(backend="openai", model="fake-model", cache=False, max_retries=0)
    with monkeypatch.context() as patch:
        patch.setattr(ForecastModel, "step", step)
        with pytest.raises(RunError, match=r"step 1: all \d+ model calls failed \(connection"):
            start_run(
                scenario_in(folder),
                RunOptions(out=folder / "runs"),
                {},
                show_progress=False,
                llm=LLMClient(settings, backend=backend),
            )
    db_path = next((folder / "runs").glob("*/run.db"))
    run = RunDatabase(db_path).run()
    assert run is not None and run.status == "failed" and run.last_step == 0
    assert {i.step for i in RunDatabase(db_path).interactions(run.id)} == {0}

    outcome = resume_run(db_path, {}, show_progress=False, llm=fake_client())
    assert outcome.status == "completed"

    def answers(path: str | Path, run_id: str) -> list[tuple[int, int, Any]]:
        rows = RunDatabase(path).interactions(run_id)
        return sorted((i.step, i.agent_id, i.parsed) for i in rows)

    assert answers(db_path, run.id) == answers(whole.database, whole.run_id)


def test_a_model_that_never_answers_validly_still_completes_its_run(tmp_path: Path) -> None:
    # Invalid answers are the model's record, not an unreachable model: the run goes on.
    db_path, run_id = make_run(tmp_path, responder=lambda body: "never valid JSON")
    run = RunDatabase(db_path).run(run_id)
    assert run is not None and run.status == "completed"
