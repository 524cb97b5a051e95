"""A million agents in one run: ``mode: archetypes`` against the fixture server at 100 ms.

1,000,000 agents drawn from attribute marginals, a Watts-Strogatz graph of about 5,000,000
edges (k = 10), 10 steps, 3 questions, through the real path (the openai SDK to the fixture
OpenAI server in its own process, 100 ms per answer, concurrency 64). Each step is timed; the
model's latency is taken out as ``ceil(calls / concurrency) x 100 ms``, the least the step could
wait for the server, so what is left is the simulation and the gateway's own work. Prints calls
per step and what one call per acting agent and question would have been.

Then the fidelity line: 2,000 agents, an in-process scripted model whose option probabilities
depend only on the archetype's attributes and exposure (which the prompt states), run once per
archetype and once per agent (``archetype.per_agent``); the TV distance between the two runs'
final answer distributions, averaged over the questions.

    .venv/bin/python benchmarks/sim_million.py [--agents 1000000] [--steps 10]
"""

from __future__ import annotations

import argparse
import hashlib
import math
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mib, result_line

from personahub.llm import LLMClient, load_settings
from personahub.llm.backends import BackendCall
from personahub.llm.testing import FunctionBackend
from personahub.llm.testing.fake_openai import spawn_server_process, stop_server_process
from sandbox.archetypes.model import ArchetypeModel
from sandbox.run_options import RunOptions
from sandbox.runner import prepare_run

SCENARIO = """\
name: million
mode: archetypes
seed: 11
steps: {steps}
agents:
  n: {agents}
  attributes:
    age_band: {{"18-34": 0.3, "35-54": 0.37, "55+": 0.33}}
    region: {{north: 0.25, south: 0.25, east: 0.25, west: 0.25}}
    occupation: {{student: 0.1, nurse: 0.1, driver: 0.2, office: 0.35, retired: 0.25}}
graph: {{type: watts_strogatz, k: 10, p: 0.05}}
archetype: {{attributes: [{attributes}], heard_bins: [0, 1, 4], fidelity: {fidelity},
             answer_mode: {mode}, per_agent: {per_agent}}}
interaction: {{activation: 0.7, post_share: 0.4}}
timeline:
  - {{step: 0, channel: seeded, k: {seeded},
      content: "The city will charge drivers $8 a day to enter the centre."}}
  - {{step: 2, content: "Bus fares drop to $1 for the first year of the charge."}}
  - {{step: 3, channel: targeted, target: {{attributes: {{occupation: driver}}}},
      content: "Delivery vans pay half."}}
questions:
  - {{id: support, type: choice, ask: "Do you support the charge?",
      options: ["yes", "no", "unsure"]}}
  - {{id: drive_less, type: likert, ask: "Will you drive into the centre less?", scale: 5}}
  - {{id: bus, type: choice, ask: "Would you take the bus instead?", options: ["yes", "no"]}}
segments: [age_band, occupation]
"""


def _run(
    folder: Path, text: str, client: LLMClient
) -> tuple[ArchetypeModel, list[float], list[int]]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scenario.yaml").write_text(text)
    prepared = prepare_run(
        folder / "scenario.yaml", RunOptions(out=folder / "runs"), {}, llm=client
    )
    model = prepared.model
    assert isinstance(model, ArchetypeModel)
    times, calls = [], []
    while model.running:
        started = time.perf_counter()
        model.step()
        times.append(time.perf_counter() - started)
        calls.append(int(model.last["calls"]))
    prepared.close()
    return model, times, calls


def _scripted(call: BackendCall) -> dict[str, float]:
    """Option weights from what the prompt says about the group (attributes, events, posts
    heard): the same for every agent the prompt fits, so archetypes lose nothing by design."""
    prompt = " ".join(m["content"] for m in call.messages)
    # what the archetype does not know of its members (their occupation) must not matter
    prompt = re.sub(r", occupation \w+", "", prompt)
    digest = hashlib.sha256((prompt + "|".join(call.options or ())).encode()).digest()
    weights = [1 + digest[i] for i in range(len(call.options or ()))]
    return dict(zip(call.options or (), weights, strict=True))


def fidelity_tv(folder: Path) -> float:
    finals = []
    for per_agent in ("false", "true"):
        text = SCENARIO.format(
            agents=2000,
            steps=4,
            attributes="age_band, region",
            fidelity=0,
            mode="logprobs",
            per_agent=per_agent,
            seeded=400,
        )
        settings = load_settings(backend="openai", model="scripted", cache=False)
        client = LLMClient(settings, backend=FunctionBackend(_scripted, model="scripted"))
        model, _, _ = _run(folder / per_agent, text, client)
        finals.append(model.state.answers.copy())
    tvs = []
    for qi in range(finals[0].shape[1]):
        counts = [np.bincount(f[:, qi][f[:, qi] >= 0], minlength=5) for f in finals]
        shares = [c / max(1, c.sum()) for c in counts]
        tvs.append(0.5 * float(np.abs(shares[0] - shares[1]).sum()))
    return float(np.mean(tvs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=100)
    args = parser.parse_args()
    # Top tokens that name the options, as a model's would: each option request is answered
    # from one completion's logprobs (a server without them costs k sampled answers instead).
    labels = ["yes", "no", "unsure", "1", "2", "3", "4", "5"]
    top = {label: -0.5 - i / 7 for i, label in enumerate(labels)}
    proc, base_url = spawn_server_process(latency_ms=args.latency_ms, top_logprobs=top)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            settings = load_settings(
                backend="openai",
                base_urls=[base_url],
                model="fake-model",
                concurrency=args.concurrency,
                cache=False,
            )
            started = time.perf_counter()
            text = SCENARIO.format(
                agents=args.agents,
                steps=args.steps,
                attributes="age_band, region, occupation",
                # the fidelity gap is measured apart (fidelity_tv), on 2,000 agents
                fidelity=0,
                mode="logprobs",
                per_agent="false",
                seeded=max(1, args.agents // 100),
            )
            model, times, calls = _run(folder / "million", text, LLMClient(settings))
            total = time.perf_counter() - started
            per_agent = [
                int(row["per_agent_calls"])
                for row in model.datacollector.get_model_vars_dataframe().to_dict("records")
            ]
            print(f"{model.table.n:,} agents, {model.graph.n_edges:,} edges; run {total:.1f}s")
            worst = 0.0
            for step, (seconds, n_calls, would) in enumerate(
                zip(times, calls, per_agent, strict=True)
            ):
                waiting = math.ceil(n_calls / args.concurrency) * args.latency_ms / 1000
                own = seconds - waiting
                worst = max(worst, own)
                print(
                    f"step {step}: {seconds:.2f}s wall, {own:.2f}s without model latency, "
                    f"{n_calls:,} calls (one per acting agent and question: {would:,})"
                )
            tv = fidelity_tv(folder)
    finally:
        stop_server_process(proc)
    rss = peak_rss_mib()
    print(f"peak RSS {rss:,.0f} MiB")
    print(result_line("sim_million_fidelity", "TV archetype vs per-agent", tv, "<=", 0.05))
    print(result_line("sim_million_rss", "peak RSS MiB", rss, "<", 6144))
    print(result_line("sim_million", "worst step s excluding model latency", worst, "<", 10.0))


if __name__ == "__main__":
    main()
