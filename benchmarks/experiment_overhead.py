"""Experiment overhead: 2 arms x 3 seeds x 200 agents x 2 steps against the bare openai SDK.

All 6 runs of the experiment go through one gateway client at concurrency 64 against the
fixture OpenAI server (in its own process) answering after 100 ms; their steps interleave. Ours
is the experiment's stepping (prompts, gateway with cache on and all misses, validation, posts,
every run's database writes; setup is printed apart). The baseline sends the same number of
requests (2,400, with the agents' own prompts) through AsyncOpenAI with a semaphore of 64 and
validates each reply. Figure: ours / raw wall time (target <= 1.20).
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import load_personas, result_line
from benchmarks.sim_overhead import run_raw
from personahub.llm import LLMClient, load_settings
from personahub.llm.testing.fake_openai import spawn_server_process, stop_server_process
from sandbox.experiment import execute
from sandbox.forecast.model import ForecastModel
from sandbox.run_options import RunOptions

EXPERIMENT = """\
name: experiment-overhead
seed: 1
population: {{source: people.jsonl, sample: {agents}}}
graph: {{type: watts_strogatz, k: 6, p: 0.1}}
steps: {steps}
timeline:
{events}
interaction: {{activation: 1.0, word_of_mouth: true}}
questions:
  - {{id: intent, ask: "Would you subscribe?", type: choice, options: [yes, maybe, no]}}
  - {{id: price_ok, ask: "Is {{{{ price }}}}/month reasonable for you?", type: likert, scale: 5}}
experiment:
  seeds: {seeds}
  vars: {{price: "$29"}}
  arms:
    control: {{}}
    cheap: {{vars: {{price: "$19"}}}}
"""


def write_experiment(folder: Path, agents: int, steps: int, seeds: int) -> Path:
    with (folder / "people.jsonl").open("w") as out:
        for i, text in enumerate(load_personas()[:agents]):
            out.write(json.dumps({"id": f"p{i}", "persona": text}) + "\n")
    # A broadcast every step keeps every agent active (an agent acts on something new).
    events = "\n".join(
        f'  - {{step: {s}, content: "Update {s}: VeloCity e-bikes at {{{{ price }}}}/month."}}'
        for s in range(steps)
    )
    path = folder / "experiment.yaml"
    path.write_text(EXPERIMENT.format(agents=agents, steps=steps, events=events, seeds=seeds))
    return path


def run_ours(
    base_url: str, path: Path, folder: Path, concurrency: int
) -> tuple[float, float, list[Any]]:
    """Wall time of the experiment's stepping, of its setup, and one step's requests."""
    settings = load_settings(
        backend="openai",
        base_urls=[base_url],
        concurrency=concurrency,
        cache_path=folder / f"cache-{time.time_ns()}.sqlite",
    )
    timed: dict[str, Any] = {}
    real_run_all = execute._run_all

    def run_all(runs: list[Any], *args: Any) -> None:
        model = runs[0].model
        assert isinstance(model, ForecastModel), "the scenario is a forecast"
        timed["sample"] = [
            a.build_request(model.scenario, model.schema, 0, model.run_seed) for a in model.by_node
        ]
        timed["start"] = time.perf_counter()
        real_run_all(runs, *args)
        timed["end"] = time.perf_counter()

    execute._run_all = run_all  # type: ignore[assignment]
    started = time.perf_counter()
    try:
        execute.start_experiment(path, RunOptions(out=folder / "runs"), {}, show_progress=False,
                                 llm=LLMClient(settings))  # fmt: skip
    finally:
        execute._run_all = real_run_all  # type: ignore[assignment]
    return timed["end"] - timed["start"], timed["start"] - started, timed["sample"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    runs = 2 * args.seeds
    total = runs * args.agents * args.steps
    floor = math.ceil(total / args.concurrency) * args.latency_ms / 1000
    proc, base_url = spawn_server_process(latency_ms=args.latency_ms)
    ours_times: list[float] = []
    raw_times: list[float] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            path = write_experiment(folder, args.agents, args.steps, args.seeds)
            for round_ in range(args.rounds):
                ours, setup, sample = run_ours(base_url, path, folder, args.concurrency)
                # The same number of requests, all runs' at once (runs are independent).
                raw = asyncio.run(run_raw(base_url, sample * runs, args.steps, args.concurrency))
                ours_times.append(ours)
                raw_times.append(raw)
                print(f"round {round_ + 1}: experiment {ours:.2f}s (setup {setup:.2f}s)  "
                      f"raw SDK {raw:.2f}s")  # fmt: skip
    finally:
        stop_server_process(proc)
    ours, raw = min(ours_times), min(raw_times)
    print(
        f"2 arms x {args.seeds} seeds x {args.agents} agents x {args.steps} steps = {total} "
        f"requests, concurrency {args.concurrency}, latency {args.latency_ms:.0f} ms; "
        f"floor = {floor:.2f}s"
    )
    print(f"experiment wall/floor = {ours / floor:.2f}   raw SDK wall/floor = {raw / floor:.2f}")
    print(result_line("experiment_overhead", "experiment/raw SDK wall", ours / raw, "<=", 1.20))


if __name__ == "__main__":
    main()
