"""Simulation scale: 100,000 agents on a small-world graph, 1% active per step.

Against the fixture OpenAI server (own process, 0 ms latency), through the real path: persona
file -> store import -> graph -> run database -> steps. Figures: wall time per step (target
< 5 s; the bare openai SDK alone spends about 2 s of CPU on 1,000 requests here) and the
process's peak RSS (target < 4 GB).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import grow, load_personas, peak_rss_mib, result_line
from personahub.llm import LLMClient, load_settings
from personahub.llm.testing.fake_openai import spawn_server_process, stop_server_process
from sandbox.forecast.model import ForecastModel
from sandbox.run_options import RunOptions
from sandbox.runner import prepare_run

SCENARIO = """\
name: sim-scale
seed: 3
population: {{source: people.jsonl, sample: {agents}}}
graph: {{type: watts_strogatz, k: 6, p: 0.1}}
steps: {steps}
timeline:
  - {{step: 0, content: "VeloCity launches e-bike subscriptions at $29/month."}}
interaction: {{activation: {activation}, word_of_mouth: true}}
questions:
  - {{id: intent, ask: "Would you subscribe?", type: choice, options: [yes, maybe, no]}}
  - {{id: price_ok, ask: "Is $29/month reasonable for you?", type: likert, scale: 5}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--activation", type=float, default=0.01)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()

    proc, base_url = spawn_server_process(latency_ms=0)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            started = time.perf_counter()
            # a few spare texts, since perturbed copies can collide with each other
            texts = grow(load_personas(), int(args.agents * 1.25) + 100, seed=1)
            with (folder / "people.jsonl").open("w") as out:
                for i, text in enumerate(texts):
                    out.write(json.dumps({"id": f"p{i}", "persona": text}) + "\n")
            (folder / "scenario.yaml").write_text(
                SCENARIO.format(agents=args.agents, steps=args.steps, activation=args.activation)
            )
            settings = load_settings(
                backend="openai",
                base_urls=[base_url],
                concurrency=args.concurrency,
                cache_path=folder / "cache.sqlite",
            )
            prepared = prepare_run(
                folder / "scenario.yaml",
                RunOptions(out=folder / "runs"),
                {},
                llm=LLMClient(settings),
            )
            model = prepared.model
            assert isinstance(model, ForecastModel), "the scenario is a forecast"
            print(
                f"setup ({len(model.by_node)} agents, {model.graph.number_of_edges()} edges, "
                f"population import + graph + run database): "
                f"{time.perf_counter() - started:.1f}s"
            )
            step_times = []
            while model.running:
                step_started = time.perf_counter()
                model.step()
                step_times.append(time.perf_counter() - step_started)
                print(
                    f"step {model.current_step}: {step_times[-1]:.2f}s, "
                    f"{model.last_active} active, {model.last_posts} posts, "
                    f"{model.last_errors} errors"
                )
            prepared.close()
    finally:
        stop_server_process(proc)
    rss = peak_rss_mib()
    worst = max(step_times)
    print(
        f"mean step {sum(step_times) / len(step_times):.2f}s, worst step {worst:.2f}s; "
        f"peak RSS {rss:.0f} MiB"
    )
    print(result_line("sim_scale_rss", "peak RSS MiB", rss, "<", 4096))
    print(result_line("sim_scale", "worst wall per step s", worst, "<", 5.0))


if __name__ == "__main__":
    main()
