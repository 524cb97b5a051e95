"""The cost estimate: ``sandbox estimate`` / ``run --dry-run`` against actual runs on the
fixture server, money from prices, no model call, and price configuration errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from personahub.llm.testing import FunctionBackend
from personahub.llm.testing.fake_config import DEFAULT_MODEL
from personahub.llm.testing.fake_openai import FakeOpenAIServer
from sandbox.cli.app import app
from sandbox.estimate.run import Estimate
from sandbox.estimate.scenario import estimate_scenario
from sandbox.npc.estimate import expected_lines
from sandbox.report import print_summary
from sandbox.run_options import RunOptions
from sandbox.rundb import RunDatabase
from sandbox.runner import start_run
from tests.support.estimates import FIXTURE_ANSWERS

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
FIXTURE_CHARS_PER_TOKEN = 6.0  # the fixture server counts whitespace words as tokens
TOLERANCE = 0.25


def _fixture_llm(server: FakeOpenAIServer) -> dict[str, Any]:
    return {
        "backend": "openai",
        "model": DEFAULT_MODEL,
        "base_urls": [server.base_url],
        "cache": False,
        "chars_per_token": FIXTURE_CHARS_PER_TOKEN,
    }


def test_the_stored_estimate_lands_within_tolerance_of_a_run_on_the_fixture_server(
    fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    # The estimate a user gets: typical answers, stored at the run's start.
    scenario = SCENARIOS / "product_launch.yaml"
    options = RunOptions(agents=20, steps=2, out=tmp_path)
    llm = _fixture_llm(fake_server)
    estimate = estimate_scenario(scenario, options, llm)
    assert fake_server.stats()["total"] == 0  # the estimate asked the server nothing

    outcome = start_run(scenario, options, llm, show_progress=False)
    run = RunDatabase(outcome.database, must_exist=True).run()
    assert run is not None and run.estimate is not None
    assert run.estimate["calls"] == estimate.calls  # stored at the run's start
    assert run.usage["calls"] == estimate.calls  # who acts when is the run's own
    ratio = run.usage["total_tokens"] / estimate.total_tokens
    assert abs(ratio - 1) <= TOLERANCE, ratio

    console = Console(record=True, width=300)
    print_summary(outcome.database, console=console)
    text = console.export_text()
    assert f"model calls {run.usage['calls']:,} / {estimate.calls:,} (1.00x)" in text
    assert "total tokens" in text


@pytest.mark.parametrize("name", ["product_launch", "harbour_town"])
def test_given_the_fixtures_answers_the_estimate_plays_the_run_out(
    fake_server: FakeOpenAIServer, tmp_path: Path, name: str
) -> None:
    # The machinery apart from the typical-answer tables: given the answers the fixture will
    # give, NPC conversations end by the dialogue's own rules (the fixture's lines vary, and
    # so does whether a speaker ends it) in the estimate as in the run.
    scenario = SCENARIOS / f"{name}.yaml"
    options = RunOptions(agents=20, steps=2, out=tmp_path)
    llm = _fixture_llm(fake_server)
    estimate = estimate_scenario(scenario, options, llm, known=FIXTURE_ANSWERS)
    assert estimate.assumptions == ["answers are the fixture server's unscripted answers"]
    outcome = start_run(scenario, options, llm, show_progress=False)
    run = RunDatabase(outcome.database, must_exist=True).run()
    assert run is not None
    assert run.usage["calls"] == estimate.calls
    ratio = run.usage["total_tokens"] / estimate.total_tokens
    assert abs(ratio - 1) <= TOLERANCE, ratio


def test_estimate_calls_no_model_through_any_backend(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    counting = FunctionBackend(lambda call: "{}")
    monkeypatch.setattr("personahub.llm.client.create_backend", lambda settings: counting)
    found = estimate_scenario(
        SCENARIOS / "harbour_town.yaml", RunOptions(agents=8, steps=2), {"backend": "openai"}
    )
    assert counting.calls == []
    assert found.calls > 8  # one profile per NPC, then dialogue turns
    # the conversation length it assumes is stated (harbour_town: at most 4 lines)
    assert found.assumptions == [
        "an NPC ends a conversation with chance 20% per line once both have spoken: "
        "3.4 lines on average (at most 4)"
    ]


def test_the_estimate_states_how_long_npc_conversations_last() -> None:
    scenario = str(SCENARIOS / "harbour_town.yaml")
    args = ["estimate", scenario, "--agents", "8", "--steps", "2", "--backend", "openai"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Assumes an NPC ends a conversation with chance 20% per line" in result.output


@pytest.mark.parametrize(
    ("turns", "end", "lines"), [(4, 0.0, 4.0), (4, 1.0, 2.0), (4, 0.5, 2.75), (2, 0.5, 2.0)]
)
def test_expected_conversation_lines_follow_the_dialogue_rules(
    turns: int, end: float, lines: float
) -> None:
    # nobody ends before both have spoken; each later line ends it with chance `end`
    assert expected_lines(turns, end) == pytest.approx(lines)


def test_dry_run_prints_the_estimate_and_creates_no_run(
    fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    args = ["--agents", "6", "--steps", "2", "--base-url", fake_server.base_url]
    scenario = str(SCENARIOS / "product_launch.yaml")
    dry = CliRunner().invoke(app, ["run", scenario, "--dry-run", "--out", str(tmp_path), *args])
    estimate = CliRunner().invoke(app, ["estimate", scenario, *args])
    assert dry.exit_code == 0 and estimate.exit_code == 0, dry.output + estimate.output
    assert dry.output == estimate.output
    assert "model calls" in dry.output and "no model was called" in dry.output
    assert list(tmp_path.iterdir()) == []
    assert fake_server.stats()["total"] == 0


def test_prices_per_million_tokens_give_money(fake_server: FakeOpenAIServer) -> None:
    llm = {**_fixture_llm(fake_server), "price_in": 0.5, "price_out": 2.0}
    found = estimate_scenario(SCENARIOS / "product_launch.yaml", RunOptions(agents=6, steps=2), llm)
    expected = found.prompt_tokens * 0.5 / 1e6 + found.completion_tokens * 2.0 / 1e6
    assert found.cost == pytest.approx(expected)
    unpriced = estimate_scenario(
        SCENARIOS / "product_launch.yaml", RunOptions(agents=6, steps=2), _fixture_llm(fake_server)
    )
    assert unpriced.cost is None
    both = found + found
    assert (both.calls, both.cost) == (2 * found.calls, pytest.approx(2 * expected))
    assert (found + unpriced).cost is None


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("price_in = -1\nprice_out = 2", "price_in: Input should be greater than or equal to 0"),
        ("price_in = 1.5", "price_out: expected with price_in"),
        ('price_in = "cheap"\nprice_out = 2', "price_in: Input should be a valid number"),
        ("price_in = inf\nprice_out = 2", "price_in: Input should be a finite number"),
    ],
)
def test_bad_price_config_is_one_clear_error(tmp_path: Path, table: str, message: str) -> None:
    config = tmp_path / "prices.toml"
    config.write_text(f"[llm]\n{table}\n")
    result = CliRunner().invoke(
        app, ["estimate", str(SCENARIOS / "product_launch.yaml"), "--config", str(config)]
    )
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_estimate_sums_runs() -> None:
    one = Estimate(calls=3, prompt_tokens=100, completion_tokens=20, cost=0.5, tokenizer="t")
    assert one + one == Estimate(
        calls=6, prompt_tokens=200, completion_tokens=40, cost=1.0, tokenizer="t"
    )


def test_logprobs_mode_estimate_counts_one_call_per_option_request(
    fake_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    # An option request is one prompt and one token on a server that gives logprobs; the
    # estimate once counted the gateway's k-sample fallback instead (10 calls' tokens each).
    scenario = tmp_path / "logprobs.yaml"
    text = (SCENARIOS / "product_launch.yaml").read_text()
    scenario.write_text(text.replace("\nquestions:", "\nanswer_mode: logprobs\nquestions:", 1))
    (tmp_path / "runs").mkdir()
    # top tokens that name options, as a model's would: a server scores each request once
    labels = ["yes", "maybe", "no", *map(str, range(1, 8))]
    fake_server.configure(top_logprobs={label: -1.0 - i / 10 for i, label in enumerate(labels)})
    options = RunOptions(agents=12, steps=2, out=tmp_path / "runs")
    llm = _fixture_llm(fake_server)
    estimate = estimate_scenario(scenario, options, llm)
    outcome = start_run(scenario, options, llm, show_progress=False)
    run = RunDatabase(outcome.database, must_exist=True).run()
    assert run is not None
    assert run.usage["calls"] == estimate.calls
    assert abs(run.usage["prompt_tokens"] / estimate.prompt_tokens - 1) <= TOLERANCE
    # a served model's logprobs support is not known in advance: the estimate says so
    [assumed] = [a for a in estimate.assumptions if "log-probabilities" in a]
    assert "one without them costs 10 sampled answers per request" in assumed


def test_answers_from_the_cache_are_named_beside_the_estimate() -> None:
    from sandbox.estimate.compare import print_cost

    console = Console(record=True, width=300)
    estimate = {"calls": 55, "prompt_tokens": 100, "completion_tokens": 10, "cost": None}
    print_cost(console, {"calls": 0, "cache_hits": 56, "total_tokens": 0}, estimate)
    text = console.export_text()
    assert "model calls 0 / 55" in text
    assert "56 answers came from the response cache (the estimate assumes none)" in text


@pytest.mark.parametrize("name", ["product_launch", "congestion_charge"])
def test_a_big_population_is_estimated_on_a_sample_close_to_the_full_estimate(name: str) -> None:
    # The run-start estimate steps a sample of a big population and scales it up: on a
    # shipped scenario, half of the packaged population lands close to stepping them all.
    from personahub.llm import load_settings
    from sandbox.estimate.run import estimate_cast
    from sandbox.estimate.tokens import RatioCounter
    from sandbox.run_options import load_inputs

    scenario, personas, graph = load_inputs(SCENARIOS / f"{name}.yaml", RunOptions(agents=150))
    settings = load_settings(None, backend="openai")

    def estimate(sample_agents: int) -> Estimate:
        counter = RatioCounter(4.0)
        return estimate_cast(scenario, personas, graph, settings, counter, "openai", sample_agents)

    full, sampled = estimate(len(personas)), estimate(75)
    assert full.assumptions == []
    assert sampled.assumptions[0].startswith("a sample of 75 of the 150 agents")
    assert abs(sampled.calls / full.calls - 1) <= 0.15
    assert abs(sampled.total_tokens / full.total_tokens - 1) <= 0.15


def test_the_sample_graph_keeps_each_agents_contacts() -> None:
    import networkx as nx

    from sandbox.estimate.sample import sample_cast
    from sandbox.population import PersonaRecord

    graph = nx.barabasi_albert_graph(400, 3, seed=1)
    personas = [PersonaRecord(str(i), f"persona {i}") for i in range(400)]
    chosen, sample = sample_cast(personas, graph, 100, seed=2)
    assert len(chosen) == 100 and sorted(sample.nodes) == list(range(100))
    wanted = [graph.degree(int(p.persona_id)) for p in chosen]
    kept = [sample.degree(i) for i in range(100)]
    assert all(k <= w for k, w in zip(kept, wanted, strict=True))
    assert sum(kept) >= 0.9 * sum(wanted)  # a hub may run out of partners, little else
