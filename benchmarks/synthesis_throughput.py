"""Synthesis throughput: ``personahub synthesize`` against a server with 500 ms latency.

1,000 instruction items (one per real Persona Hub persona) at concurrency 32, against the
fake OpenAI-compatible server in a separate process answering every request after 500 ms,
with varied valid answers (so dedup keeps them). The whole synthesis path is paid: prompt
rendering, the gateway (cache on, all misses), refusal and dedup checks, the journal
(fsync per settled group) and the output file.

Figures, measured side by side in this one run:

- wall / floor, where floor = ceil(1000 / 32) x 0.5 s = 16 s: what the latency alone costs at
  that concurrency. Target <= 1.15. The raw openai SDK under the same semaphore is run too,
  for reference.
- the speed-up over a sequential loop like the reference implementation's (one
  ``chat.completions.create`` per persona, one after another). Running it for all 1,000
  would take over 8 minutes, so it runs the first ``--sequential`` items (default 24) and
  its per-item time is scaled to 1,000; the printed line says so.

Run: ``.venv/bin/python benchmarks/synthesis_throughput.py``
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
from openai.types.shared_params import ResponseFormatJSONSchema

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import load_personas, result_line, sdk_messages
from personahub.llm import LLMClient, LLMSettings, load_settings
from personahub.llm.testing.fake_openai import spawn_server_process, stop_server_process
from personahub.synthesis import SynthesisJob, prepare, run_job
from personahub.synthesis.prompting import messages_for
from personahub.synthesis.tasks import TASKS

ITEMS = 1000
CONCURRENCY = 32
LATENCY_MS = 500.0
TARGET = 1.15
MODEL = "fake-model"


def _settings(base_url: str, cache: Path) -> LLMSettings:
    return load_settings(
        backend="openai",
        base_url=base_url,
        api_key="bench-key",
        model=MODEL,
        timeout_s=60.0,
        concurrency=CONCURRENCY,
        cache=True,
        cache_path=cache,
    )


async def run_ours(base_url: str, people: Path, folder: Path) -> tuple[float, int]:
    job = SynthesisJob(
        task="instruction",
        personas=str(people),
        out=folder / "instructions.jsonl",
        n=ITEMS,
        concurrency=CONCURRENCY,
    )
    prepared = prepare(job)
    async with LLMClient(_settings(base_url, folder / "cache.sqlite")) as client:
        started = time.perf_counter()
        report = await run_job(client, prepared)
        wall = time.perf_counter() - started
    assert report.settled == ITEMS and not report.errors, report
    return wall, report.kept


def _requests(personas: list[str]) -> list[list[dict[str, str]]]:
    spec = TASKS["instruction"]
    return [messages_for(spec, p, "zero-shot", []) for p in personas]


async def run_raw(base_url: str, chats: list[list[dict[str, str]]]) -> float:
    """The bare SDK under the same semaphore (json_schema format), for reference."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench-key", max_retries=0)
    schema = TASKS["instruction"].output.model_json_schema()
    fmt: ResponseFormatJSONSchema = {
        "type": "json_schema",
        "json_schema": {"name": "UserInstruction", "schema": schema},
    }
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(chat: list[dict[str, str]]) -> None:
        async with limit:
            reply = await client.chat.completions.create(
                model=MODEL,
                messages=sdk_messages(chat),
                response_format=fmt,
            )
            json.loads(reply.choices[0].message.content or "")

    try:
        started = time.perf_counter()
        await asyncio.gather(*(one(chat) for chat in chats))
        return time.perf_counter() - started
    finally:
        await client.close()


def run_sequential(base_url: str, chats: list[list[dict[str, str]]], out: Path) -> float:
    """A sequential loop like the reference implementation's: call, parse, write, repeat."""
    client = openai.OpenAI(base_url=base_url, api_key="bench-key", max_retries=0)
    started = time.perf_counter()
    with out.open("w", encoding="utf-8") as fh:
        for chat in chats:
            reply = client.chat.completions.create(
                model=MODEL,
                messages=sdk_messages(chat),
                response_format={"type": "json_object"},
            )
            fh.write(json.dumps({"output": reply.choices[0].message.content}) + "\n")
    client.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=int, default=24, help="Items of the sequential loop.")
    args = parser.parse_args()

    personas = load_personas()[:ITEMS]
    floor = math.ceil(ITEMS / CONCURRENCY) * LATENCY_MS / 1000
    process, base_url = spawn_server_process(latency_ms=LATENCY_MS, vary_strings=True)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
            folder = Path(tmp)
            people = folder / "people.jsonl"
            people.write_text("".join(json.dumps({"persona": p}) + "\n" for p in personas))
            chats = _requests(personas)
            raw = asyncio.run(run_raw(base_url, chats))
            ours, kept = asyncio.run(run_ours(base_url, people, folder))
            sequential = run_sequential(base_url, chats[: args.sequential], folder / "seq.jsonl")
    finally:
        stop_server_process(process)

    per_item = sequential / args.sequential
    print(f"items {ITEMS:,} at concurrency {CONCURRENCY}, latency {LATENCY_MS:.0f} ms")
    print(f"floor ceil({ITEMS}/{CONCURRENCY}) x {LATENCY_MS / 1000:.1f} s = {floor:.1f} s")
    print(f"raw openai SDK:       {raw:7.2f} s  wall/floor {raw / floor:.3f}")
    print(f"personahub synthesize {ours:7.2f} s  wall/floor {ours / floor:.3f}  kept {kept:,}")
    print(
        f"sequential loop:      {sequential:7.2f} s for {args.sequential} items "
        f"({per_item:.3f} s/item, {per_item * ITEMS:.0f} s scaled to {ITEMS:,})"
    )
    print(f"speed-up over the sequential loop: {per_item * ITEMS / ours:.1f}x")
    print(result_line("synthesis_throughput", "wall / floor", ours / floor, "<=", TARGET))


if __name__ == "__main__":
    main()
