"""Gateway overhead: the LLM gateway vs the bare ``openai`` SDK on the same requests.

2,000 structured requests at concurrency 64 against the fake OpenAI-compatible server
running in a separate process with 100 ms latency per answer. The gateway runs with its
response cache on, every request a miss (a fresh cache file per run, distinct prompts), so
its whole per-request path is paid: cache lookup and write, budget, retries wrapper, JSON
validation and metering. The raw baseline is ``AsyncOpenAI`` + ``asyncio.Semaphore(64)`` +
a ``json_schema`` response format + ``model_validate_json`` of each reply.

Raw and gateway runs alternate (raw, gateway, raw, gateway, ...) and the best run of each
is compared (on a shared machine other load only ever adds time; medians are printed too).
Figure: gateway wall / raw wall, target <= 1.10. Each wall is also shown against the floor
``ceil(2000 / 64) * 0.1 s`` (what the server's latency alone costs), with the client
process's CPU time per request.

Run: ``.venv/bin/python benchmarks/gateway_overhead.py [--rounds 6] [--profile]``
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import openai
from openai.types.shared_params import ResponseFormatJSONSchema
from pydantic import BaseModel, Field

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import result_line, sdk_messages
from personahub.llm import LLMClient, LLMRequest, load_settings
from personahub.llm.testing.fake_openai import spawn_server_process, stop_server_process

REQUESTS = 2000
CONCURRENCY = 64
LATENCY_MS = 100.0
TARGET = 1.10
MODEL = "fake-model"
TEMPERATURE = 0.7
MAX_TOKENS = 256


class PersonaOut(BaseModel):
    """A typical structured answer of the pipeline."""

    persona: str = Field(max_length=200)
    occupation: str = Field(max_length=60)
    age: int = Field(ge=16, le=90)
    stance: Literal["support", "oppose", "unsure"]
    interests: list[str] = Field(min_length=1, max_length=5)


def prompts(run: int) -> list[list[dict[str, str]]]:
    """Distinct prompts per run, the same length for raw and gateway runs."""
    return [
        [
            {"role": "system", "content": "You write short personas for a social simulation."},
            {
                "role": "user",
                "content": f"Run {run}, request {i}: describe one person who would read a "
                "local newspaper article about a new bike lane.",
            },
        ]
        for i in range(REQUESTS)
    ]


async def run_raw(base_url: str, messages: list[list[dict[str, str]]]) -> tuple[float, float]:
    """The baseline: the bare SDK under a semaphore; returns wall and CPU seconds."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench-key", timeout=60.0, max_retries=0)
    schema = PersonaOut.model_json_schema()
    response_format: ResponseFormatJSONSchema = {
        "type": "json_schema",
        "json_schema": {"name": PersonaOut.__name__, "schema": schema},
    }
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(chat: list[dict[str, str]]) -> PersonaOut:
        async with limit:
            response = await client.chat.completions.create(
                model=MODEL,
                messages=sdk_messages(chat),
                temperature=TEMPERATURE,
                max_tokens=MAX_TOKENS,
                response_format=response_format,
            )
            return PersonaOut.model_validate_json(response.choices[0].message.content or "")

    try:
        started, cpu = time.perf_counter(), time.process_time()
        results = await asyncio.gather(*(one(chat) for chat in messages))
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await client.close()
    assert len(results) == len(messages)
    return wall, cpu


async def run_gateway(
    base_url: str, messages: list[list[dict[str, str]]], cache: Path
) -> tuple[float, float]:
    """The gateway with a fresh cache (all misses); returns wall and CPU seconds."""
    settings = load_settings(
        backend="openai",
        base_url=base_url,
        api_key="bench-key",
        model=MODEL,
        temperature=TEMPERATURE,
        max_tokens=MAX_TOKENS,
        timeout_s=60.0,
        concurrency=CONCURRENCY,
        cache=True,
        cache_path=cache,
    )
    requests = [LLMRequest(messages=chat, schema=PersonaOut) for chat in messages]
    async with LLMClient(settings) as client:
        started, cpu = time.perf_counter(), time.process_time()
        results = await client.batch(requests)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        usage = client.usage()
    failed = [r.error for r in results if r.error is not None]
    if failed:
        raise SystemExit(f"gateway run had {len(failed)} failures, first: {failed[0]}")
    assert usage["cache_misses"] == len(messages) and usage["cache_hits"] == 0, usage
    return wall, cpu


def profile(label: str, fn: Callable[[], Any]) -> None:
    """Run ``fn`` under cProfile and print the top entries to stderr."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    print(f"--- profile: {label}", file=sys.stderr)
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="raw/gateway pairs to run")
    parser.add_argument("--profile", action="store_true", help="cProfile one gateway run")
    args = parser.parse_args()

    floor = math.ceil(REQUESTS / CONCURRENCY) * LATENCY_MS / 1000.0
    process, base_url = spawn_server_process(latency_ms=LATENCY_MS)
    try:
        with tempfile.TemporaryDirectory(prefix="gateway-bench-") as folder:
            root = Path(folder)
            # Warm-up (imports, lazy SDK setup, the server's first connections); not counted.
            asyncio.run(run_raw(base_url, prompts(-1)[:256]))
            asyncio.run(run_gateway(base_url, prompts(-2)[:256], root / "warmup.sqlite"))
            if args.profile:
                profile(
                    "gateway",
                    lambda: asyncio.run(
                        run_gateway(base_url, prompts(-3), root / "profile.sqlite")
                    ),
                )
            raw: list[tuple[float, float]] = []
            gateway: list[tuple[float, float]] = []
            for round_ in range(args.rounds):
                raw.append(asyncio.run(run_raw(base_url, prompts(2 * round_))))
                report(f"raw     run {round_ + 1}", *raw[-1], floor)
                cache = root / f"cache-{round_}.sqlite"
                gateway.append(asyncio.run(run_gateway(base_url, prompts(2 * round_ + 1), cache)))
                report(f"gateway run {round_ + 1}", *gateway[-1], floor)
    finally:
        stop_server_process(process)

    print(
        f"{REQUESTS} structured requests, concurrency {CONCURRENCY}, server latency"
        f" {LATENCY_MS:.0f} ms, floor {floor:.2f} s"
    )
    for label, runs in (("raw SDK", raw), ("gateway", gateway)):
        walls = [wall for wall, _ in runs]
        cpu_ms = 1000 * min(cpu for _, cpu in runs) / REQUESTS
        print(
            f"{label}: best {min(walls):.3f} s (wall / floor {min(walls) / floor:.3f}),"
            f" median {statistics.median(walls):.3f} s, best CPU {cpu_ms:.3f} ms/request"
        )
    best_ratio = min(w for w, _ in gateway) / min(w for w, _ in raw)
    median_ratio = statistics.median(w for w, _ in gateway) / statistics.median(w for w, _ in raw)
    print(f"gateway / raw: best {best_ratio:.3f}, median {median_ratio:.3f}")
    print(
        result_line(
            "gateway_overhead",
            "gateway wall / raw SDK wall (best of runs)",
            best_ratio,
            "<=",
            TARGET,
        )
    )


def report(label: str, wall: float, cpu: float, floor: float) -> None:
    print(
        f"{label}: {wall:.3f} s, wall / floor {wall / floor:.3f},"
        f" client CPU {1000 * cpu / REQUESTS:.3f} ms/request",
        flush=True,
    )


if __name__ == "__main__":
    main()
