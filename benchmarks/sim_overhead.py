"""Simulation overhead: a full sandbox run against the bare openai SDK, side by side.

1,000 agents x 3 steps, all active, at concurrency 64, against the fixture OpenAI server (in its
own process) answering after 100 ms. Ours is the whole simulation: prompts, the gateway (cache
on, all misses), validation, posts along the graph and the run database's writes. The baseline
sends the same number of requests (3,000, with the agents' own prompts) through AsyncOpenAI
with a semaphore of 64 and validates each reply. Figure: ours / raw wall time (target <= 1.20).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import openai

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import load_personas, result_line, sdk_messages
from personahub.llm import LLMClient, LLMRequest, load_settings
from personahub.llm.testing.fake_openai import spawn_server_process, stop_server_process
from sandbox.forecast.answers import AgentResponse
from sandbox.forecast.model import ForecastModel
from sandbox.run_options import RunOptions
from sandbox.runner import prepare_run

SCENARIO = """\
name: sim-overhead
seed: 1
population: {{source: people.jsonl, sample: {agents}}}
graph: {{type: watts_strogatz, k: 6, p: 0.1}}
steps: {steps}
timeline:
{events}
interaction: {{activation: 1.0, word_of_mouth: true}}
questions:
  - {{id: intent, ask: "Would you subscribe?", type: choice, options: [yes, maybe, no]}}
  - {{id: price_ok, ask: "Is $29/month reasonable for you?", type: likert, scale: 5}}
"""


def write_scenario(folder: Path, agents: int, steps: int) -> Path:
    with (folder / "people.jsonl").open("w") as out:
        for i, text in enumerate(load_personas()[:agents]):
            out.write(json.dumps({"id": f"p{i}", "persona": text}) + "\n")
    # A broadcast every step keeps every agent active (an agent acts on something new).
    events = "\n".join(
        f'  - {{step: {s}, content: "Update {s}: VeloCity e-bikes at $29/month."}}'
        for s in range(steps)
    )
    path = folder / "scenario.yaml"
    path.write_text(SCENARIO.format(agents=agents, steps=steps, events=events))
    return path


def run_ours(
    base_url: str, scenario: Path, folder: Path, concurrency: int
) -> tuple[float, list[LLMRequest[AgentResponse]]]:
    """Wall time of the simulation's steps (setup excluded) and one step's requests."""
    settings = load_settings(
        backend="openai",
        base_urls=[base_url],
        concurrency=concurrency,
        cache_path=folder / f"cache-{time.time_ns()}.sqlite",
    )
    prepared = prepare_run(scenario, RunOptions(out=folder / "runs"), {}, llm=LLMClient(settings))
    model = prepared.model
    assert isinstance(model, ForecastModel), "the scenario is a forecast"
    sample = [
        a.build_request(model.scenario, model.schema, 0, model.run_seed) for a in model.by_node
    ]
    started = time.perf_counter()
    while model.running:
        model.step()
    wall = time.perf_counter() - started
    prepared.close()
    return wall, sample


async def run_raw(
    base_url: str, requests: list[LLMRequest[AgentResponse]], steps: int, concurrency: int
) -> float:
    """The same number of requests through the bare SDK, validated like ours."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0)
    schema_model = requests[0].schema
    assert schema_model is not None, "agent requests are structured"
    schema = schema_model.model_json_schema()
    limit = asyncio.Semaphore(concurrency)

    async def one(request: LLMRequest[AgentResponse]) -> None:
        async with limit:
            response = await client.chat.completions.create(
                model="bench",
                messages=sdk_messages(request.messages),
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "AgentResponse", "schema": schema},
                },
            )
            schema_model.model_validate_json(response.choices[0].message.content or "")

    started = time.perf_counter()
    for _ in range(steps):  # steps are sequential in the simulation too
        await asyncio.gather(*(one(r) for r in requests))
    wall = time.perf_counter() - started
    await client.close()
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    floor = args.steps * math.ceil(args.agents / args.concurrency) * args.latency_ms / 1000
    proc, base_url = spawn_server_process(latency_ms=args.latency_ms)
    ours_times: list[float] = []
    raw_times: list[float] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            scenario = write_scenario(folder, args.agents, args.steps)
            for round_ in range(args.rounds):
                ours, sample = run_ours(base_url, scenario, folder, args.concurrency)
                raw = asyncio.run(run_raw(base_url, sample, args.steps, args.concurrency))
                ours_times.append(ours)
                raw_times.append(raw)
                print(f"round {round_ + 1}: simulation {ours:.2f}s  raw SDK {raw:.2f}s")
    finally:
        stop_server_process(proc)
    ours, raw = min(ours_times), min(raw_times)
    print(
        f"{args.agents} agents x {args.steps} steps, concurrency {args.concurrency}, "
        f"latency {args.latency_ms:.0f} ms; floor = {floor:.2f}s"
    )
    print(f"simulation wall/floor = {ours / floor:.2f}   raw SDK wall/floor = {raw / floor:.2f}")
    print(result_line("sim_overhead", "simulation/raw SDK wall", ours / raw, "<=", 1.20))


if __name__ == "__main__":
    main()
