"""Several OpenAI-compatible endpoints: load spread, an endpoint stopped mid-run, failovers
recorded per endpoint and per move, in the gateway's usage, the run database and the summary."""

from __future__ import annotations

import io
import json
import socket
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from personahub.llm import LLMClient, LLMRequest, LLMSettings
from personahub.llm.backends.endpoints import Endpoint, EndpointPool
from personahub.llm.meter import endpoint_lines
from sandbox.report import print_summary
from sandbox.run_options import RunOptions
from sandbox.rundb import RunDatabase
from sandbox.runner import start_run
from tests.support.fake_openai import FakeOpenAIServer


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def dead_url() -> str:
    """The base URL of a port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


@pytest.fixture
def servers() -> Iterator[list[FakeOpenAIServer]]:
    """Three in-thread fixture servers, 20 ms per answer."""
    with ExitStack() as stack:
        yield [stack.enter_context(FakeOpenAIServer(latency_ms=20)) for _ in range(3)]


async def test_calls_spread_over_every_endpoint(
    servers: list[FakeOpenAIServer], llm_settings_factory: Callable[..., LLMSettings]
) -> None:
    urls = [s.base_url for s in servers]
    async with LLMClient(llm_settings_factory(base_urls=urls, cache=False)) as client:
        results = await client.batch([LLMRequest(user(f"p {i}")) for i in range(60)], 12)
        usage = client.usage()
    assert all(r.ok for r in results)
    served = [s.stats()["total"] for s in servers]
    # Every endpoint takes a real share (20 each when nothing else loads the machine).
    assert sum(served) == 60 and min(served) >= 8, served
    assert {u: usage["per_endpoint"][u]["calls"] for u in urls} == dict(
        zip(urls, served, strict=True)
    )
    assert usage["failovers"] == 0 and usage["failover_moves"] == []
    assert all(usage["per_endpoint"][u]["errors"] == 0 for u in urls)


async def test_an_endpoint_stopped_mid_run_hands_its_calls_to_the_others(
    servers: list[FakeOpenAIServer], llm_settings_factory: Callable[..., LLMSettings]
) -> None:
    urls = [s.base_url for s in servers]
    doomed, doomed_url = servers[1], urls[1]
    completed = 0
    completed_when_stopped: list[int] = []

    def on_result(_index: int, _result: Any) -> None:
        nonlocal completed
        completed += 1
        if not completed_when_stopped and completed >= 30:
            # Stopped from inside the run, holding up the client's loop until the server is
            # gone: whatever starts after this must find it down, however loaded the machine.
            doomed.stop()
            completed_when_stopped.append(completed)

    settings = llm_settings_factory(base_urls=urls, cache=False)
    async with LLMClient(settings) as client:
        requests = [LLMRequest(user(f"p {i}")) for i in range(120)]
        results = await client.batch(requests, concurrency=12, on_result=on_result)
        usage = client.usage()

    assert all(r.ok for r in results), [r.error for r in results if r.error]
    assert completed_when_stopped, "the doomed endpoint was never stopped"
    # Requests start in order, at most 12 at a time: these all began after the stop.
    late = [r.endpoint for r in results[completed_when_stopped[0] + 12 :]]
    assert late and doomed_url not in late, "calls kept going to the stopped endpoint"
    per = usage["per_endpoint"]
    assert sum(int(per[u]["calls"]) for u in urls) == 120
    assert 1 <= int(per[doomed_url]["calls"]) <= doomed.stats()["total"]
    for server, url in ((servers[0], urls[0]), (servers[2], urls[2])):
        assert int(per[url]["calls"]) == server.stats()["total"]
        assert per[url]["failovers"] == 0
    # Every move left the stopped endpoint for a live one, and each is counted.
    assert usage["failovers"] >= 1
    assert {m["from"] for m in usage["failover_moves"]} == {doomed_url}
    assert {m["to"] for m in usage["failover_moves"]} <= {urls[0], urls[2]}
    assert sum(m["calls"] for m in usage["failover_moves"]) == usage["failovers"]
    assert per[doomed_url]["failovers"] == usage["failovers"] <= per[doomed_url]["errors"]
    assert per[doomed_url]["rests"] >= 1
    assert any(doomed_url in line and "failovers away" in line for line in endpoint_lines(usage))


async def test_a_hung_or_unavailable_endpoint_moves_the_call(
    servers: list[FakeOpenAIServer], llm_settings_factory: Callable[..., LLMSettings]
) -> None:
    first, second = servers[0], servers[1]
    settings = llm_settings_factory(
        base_urls=[first.base_url, second.base_url], cache=False, timeout_s=0.5
    )
    async with LLMClient(settings) as client:
        for action in ({"hang": True}, {"status": 503}):
            first.reset()
            first.enqueue(action)
            # Make the first endpoint the choice: the second is busy in the pool's eyes.
            client.backend.endpoints[1].in_flight += 1
            started = time.perf_counter()
            result = await client.complete(LLMRequest(user(f"after {action}")))
            client.backend.endpoints[1].in_flight -= 1
            assert result.ok and result.endpoint == second.base_url
            assert result.retries == 0 and time.perf_counter() - started < 2.0
            # Let the rest end before the next round.
            client.backend.endpoints[0].down_until = 0.0
            client.backend.endpoints[0].failures = 0
        usage = client.usage()
    assert usage["failover_moves"] == [{"from": first.base_url, "to": second.base_url, "calls": 2}]
    assert usage["per_endpoint"][first.base_url]["errors"] == 2


async def test_retries_and_errors_show_for_a_single_endpoint(
    servers: list[FakeOpenAIServer], llm_settings_factory: Callable[..., LLMSettings]
) -> None:
    # Issue 17, item 5: a lone endpoint's summary said "errors: none" after many retries.
    server = servers[0]
    server.configure(queue=[{"status": 500}, {"status": 503}, {"status": 500}])
    settings = llm_settings_factory(base_url=server.base_url, cache=False, max_retries=4)
    async with LLMClient(settings) as client:
        results = await client.batch([LLMRequest(user(f"p {i}")) for i in range(3)], concurrency=1)
        usage = client.usage()
    assert all(r.ok for r in results)
    (line,) = endpoint_lines(usage)
    assert line.startswith(server.base_url)
    assert "3 errors, 3 retries" in line
    assert usage["per_endpoint"][server.base_url]["retries"] == usage["retries"] == 3


def test_a_rested_endpoint_gets_one_probe_at_a_time() -> None:
    a, b = Endpoint("http://a/v1", None), Endpoint("http://b/v1", None)
    pool = EndpointPool([a, b])
    pool.rest(a)
    pool.rest(a)  # requests failing together count once
    assert (a.failures, a.rests) == (1, 1)
    assert {pool.pick().url for _ in range(4)} == {"http://b/v1"}  # type: ignore[union-attr]
    assert pool.pick(exclude=[b]) is None
    a.down_until = 0.0  # the rest is over: a probe may go, but only one at a time
    b.in_flight = 5
    assert pool.pick() is a
    a.in_flight = 1
    assert pool.pick() is b
    single = EndpointPool([Endpoint("http://only/v1", None)])
    single.rest(single.endpoints[0])
    assert single.pick() is single.endpoints[0]  # a lone endpoint is always used


SCENARIO = """\
name: endpoints
seed: 3
population: {source: people.jsonl}
graph: {type: watts_strogatz, k: 2, p: 0.0}
steps: 2
timeline: [{step: 0, content: "A new tram line opens."}]
interaction: {activation: 1.0}
questions:
  - {id: intent, ask: "Will you ride it?", type: choice, options: [yes, maybe, no]}
"""


def test_a_run_records_failovers_in_its_database_and_summary(
    tmp_path: Path, servers: list[FakeOpenAIServer]
) -> None:
    with (tmp_path / "people.jsonl").open("w") as out:
        for i in range(8):
            out.write(json.dumps({"id": f"p{i}", "persona": f"Commuter number {i}."}) + "\n")
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(textwrap.dedent(SCENARIO))
    dead = dead_url()
    settings = LLMSettings(
        backend="openai",
        base_urls=[dead, servers[0].base_url, servers[1].base_url],
        cache=False,
        backoff_base_s=0.01,
        backoff_max_s=0.02,
        timeout_s=5,
        concurrency=4,
    )
    outcome = start_run(
        scenario,
        RunOptions(out=tmp_path / "runs"),
        {},
        llm=LLMClient(settings),
        show_progress=False,
    )
    assert outcome.status == "completed"
    database = RunDatabase(outcome.database)
    run = database.run()
    database.close()
    assert run is not None
    usage = run.usage
    assert usage["calls"] == 16 and usage["per_endpoint"][dead]["calls"] == 0
    assert (
        usage["failovers"] >= 1 and usage["per_endpoint"][dead]["failovers"] == usage["failovers"]
    )
    assert {m["from"] for m in usage["failover_moves"]} == {dead}
    console = Console(file=io.StringIO(), width=200)
    print_summary(outcome.database, console=console)
    printed = console.file.getvalue()  # type: ignore[attr-defined]
    assert f"{dead}: 0 calls" in printed and f"failovers: {usage['failovers']}" in printed
