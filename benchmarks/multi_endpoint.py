"""Many endpoints: a run spread over 3 OpenAI-compatible servers survives one being killed.

Three fixture servers (tests/support/fake_openai.py), each in its own process, answer after
200 ms. The gateway sends 1,200 structured requests at concurrency 48, least-in-flight first
over the three base URLs. Once 30% of the calls have completed, one server is killed (SIGKILL:
its open connections reset, new ones are refused). Its in-flight and later calls must move to
the two others: every call has to complete, and the moves are read back from the gateway's
usage snapshot (per-endpoint calls, errors and failovers, and each from -> to move).

Figure: wall / floor, where floor = ceil(N / concurrency) x latency = ceil(1200 / 48) x 0.2 s
= 5.0 s: the time the servers' latency alone takes when every slot is always busy and nothing
fails. Target <= 1.25: a moved call costs one extra latency, and client overhead the rest. A
control run with all three servers alive (same calls, nobody killed) is printed first, so the
cost of the kill itself is the difference of the two walls.

Run: ``.venv/bin/python benchmarks/multi_endpoint.py [--calls 1200] [--concurrency 48]``
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import result_line
from personahub.llm import LLMClient, LLMRequest, load_settings
from personahub.llm.backends.openai_compat import OpenAIBackend
from personahub.llm.meter import endpoint_lines
from personahub.llm.testing.fake_openai import spawn_server_process, stop_server_process

SERVERS = 3
LATENCY_MS = 200.0
KILL_AFTER = 0.30
TARGET = 1.25


class Reaction(BaseModel):
    """A typical structured answer of a simulated agent."""

    reaction: str = Field(max_length=200)
    intent: Literal["yes", "maybe", "no"]
    fair: int = Field(ge=1, le=5)


def requests(n: int, tag: str) -> list[LLMRequest]:
    """Distinct prompts, so nothing could be answered from a cache."""
    return [
        LLMRequest(
            messages=[
                {"role": "system", "content": "You are a commuter in a city simulation."},
                {"role": "user", "content": f"{tag} {i}: the tram fare rises. Your reaction?"},
            ],
            schema=Reaction,
        )
        for i in range(n)
    ]


async def run(urls: list[str], victim: Any, calls: int, concurrency: int) -> dict[str, Any]:
    """The timed run: returns wall time, results, usage and when the kill happened."""
    with tempfile.TemporaryDirectory(prefix="multi-endpoint-") as folder:
        settings = load_settings(
            backend="openai",
            base_urls=urls,
            api_key="bench-key",
            model="fake-model",
            timeout_s=30.0,
            concurrency=concurrency,
            cache=False,
            cache_path=Path(folder) / "cache.sqlite",
        )
        async with LLMClient(settings) as client:
            # Warm-up (connections, lazy SDK setup) on every server; not counted.
            await client.batch(requests(2 * concurrency, "warm-up"))
            client.meter.per_endpoint.clear()
            backend = client.backend
            assert isinstance(backend, OpenAIBackend), "settings name the openai backend"
            for endpoint in backend.endpoints:
                endpoint.calls = endpoint.errors = endpoint.failovers = endpoint.rests = 0
            backend.pool.moves.clear()
            client.meter.calls = 0

            done = 0
            killed: dict[str, float] = {}
            started = time.perf_counter()

            def on_result(_index: int, _result: Any) -> None:
                nonlocal done
                done += 1
                if victim is not None and not killed and done >= KILL_AFTER * calls:
                    victim.kill()
                    killed.update(at_s=time.perf_counter() - started, completed=done)

            results = await client.batch(requests(calls, "run"), on_result=on_result)
            wall = time.perf_counter() - started
            usage = client.usage()
    return {"wall": wall, "results": results, "usage": usage, "killed": killed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1200)
    parser.add_argument("--concurrency", type=int, default=48)
    args = parser.parse_args()

    processes, urls = [], []
    try:
        for _ in range(SERVERS):
            process, url = spawn_server_process(latency_ms=LATENCY_MS)
            processes.append(process)
            urls.append(url)
        victim, victim_url = processes[1], urls[1]
        control = asyncio.run(run(urls, None, args.calls, args.concurrency))
        outcome = asyncio.run(run(urls, victim, args.calls, args.concurrency))
    finally:
        for process in processes:
            stop_server_process(process)

    floor = math.ceil(args.calls / args.concurrency) * LATENCY_MS / 1000.0
    results, usage, killed = outcome["results"], outcome["usage"], outcome["killed"]
    completed = sum(1 for r in results if r.ok)
    print(
        f"{SERVERS} fixture servers (own processes), {args.calls:,} structured calls,"
        f" concurrency {args.concurrency}, latency {LATENCY_MS:.0f} ms"
    )
    print(
        f"control run, all {SERVERS} alive: wall {control['wall']:.2f} s"
        f" (wall / floor {control['wall'] / floor:.3f}), failovers {control['usage']['failovers']}"
    )
    print(
        f"killed {victim_url} after {killed.get('completed', 0):,} calls had completed"
        f" (t = {killed.get('at_s', float('nan')):.2f} s)"
    )
    print(
        f"floor = ceil({args.calls} / {args.concurrency}) x {LATENCY_MS / 1000:.3f} s"
        f" = {floor:.2f} s; wall {outcome['wall']:.2f} s"
    )
    for line in endpoint_lines(usage):
        print(f"  {line}")
    print(f"calls completed: {completed:,} of {args.calls:,}; gateway retries {usage['retries']}")
    if completed != args.calls:
        failed = [r.error for r in results if r.error is not None]
        raise SystemExit(f"{args.calls - completed} calls failed, first: {failed[0]}")
    if not usage["failovers"]:
        raise SystemExit("no failover was recorded after the kill")
    print(
        result_line(
            "multi_endpoint",
            f"wall / floor ({args.calls:,} calls, 1 of {SERVERS} endpoints killed at 30%)",
            outcome["wall"] / floor,
            "<=",
            TARGET,
        )
    )


if __name__ == "__main__":
    main()
