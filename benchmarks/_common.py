"""Shared helpers of the benchmarks: the real persona sample, seeded perturbation that
grows it into a corpus with near-duplicates, peak memory, and the result line.

Every benchmark ends with exactly one line
``<name>: <figure> = <value> (target <op> <value>) PASS|FAIL`` made by :func:`result_line`.
"""

from __future__ import annotations

import json
import operator
import random
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from openai.types.chat import ChatCompletionMessageParam

from personahub.llm.types import Message

TOOL_JSONL = Path(__file__).resolve().parents[1].parent / "shared/data/personahub/tool.jsonl"
_FILLERS = ("also", "really", "very", "often", "now", "mostly", "quite")
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


def load_personas(path: Path = TOOL_JSONL) -> list[str]:
    """The real personas of the Persona Hub sample (exits with a message if it is absent)."""
    if not path.exists():
        sys.exit(f"benchmark data not found: {path} (the shared Persona Hub sample)")
    personas = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            text = json.loads(line).get("input persona", "")
            if text.strip():
                personas.append(text.strip())
    return personas


def perturb(text: str, rng: random.Random) -> str:
    """One to three edits: swap two neighbouring words, drop a word, or add a filler word.

    Swaps keep the word set (a MinHash near-duplicate); a drop or an insertion in a
    15-word persona moves the Jaccard to about 0.93, two of them to about 0.87, so the
    corpus holds near-duplicates on both sides of a 0.9 threshold.
    """
    words = text.split()
    for _ in range(rng.randint(1, 3)):
        roll = rng.random()
        if roll < 0.5 and len(words) > 1:
            i = rng.randrange(len(words) - 1)
            words[i], words[i + 1] = words[i + 1], words[i]
        elif roll < 0.8 and len(words) > 3:
            del words[rng.randrange(len(words))]
        else:
            words.insert(rng.randrange(len(words) + 1), rng.choice(_FILLERS))
    return " ".join(words)


def grow(base: list[str], n: int, seed: int = 0) -> list[str]:
    """A seeded corpus of ``n`` texts: the originals plus perturbed copies, shuffled.

    With ``n`` below the number of originals, a seeded sample of them.
    """
    rng = random.Random(seed)
    if n <= len(base):
        return rng.sample(base, n)
    texts = list(base)
    texts.extend(perturb(rng.choice(base), rng) for _ in range(n - len(base)))
    rng.shuffle(texts)
    return texts


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


def _fmt(value: float) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) < 10:
        return f"{value:.4f}"
    return f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"


def result_line(name: str, figure: str, value: float, op: str, target: float) -> str:
    """Format the final result line of a benchmark.

    Args:
        name: Benchmark name.
        figure: What is measured.
        value: The measured value.
        op: Comparison with the target: ``>=``, ``<=``, ``>`` or ``<``.
        target: The target value.

    Returns:
        ``<name>: <figure> = <value> (target <op> <target>) PASS|FAIL``
    """
    verdict = "PASS" if _OPS[op](value, target) else "FAIL"
    return f"{name}: {figure} = {_fmt(value)} (target {op} {_fmt(target)}) {verdict}"


class Ticker:
    """Progress lines on stderr at most every ``every`` seconds."""

    def __init__(self, label: str, total: int, every: float = 10.0) -> None:
        self.label, self.total, self.every = label, total, every
        self.started = self.last = time.perf_counter()

    def update(self, done: int) -> None:
        """Report ``done`` of ``total`` with the rate and the time left."""
        now = time.perf_counter()
        if now - self.last < self.every and done < self.total:
            return
        self.last = now
        rate = done / max(now - self.started, 1e-9)
        left = (self.total - done) / rate if rate else float("inf")
        print(
            f"  {self.label}: {done:,}/{self.total:,} ({rate:,.0f}/s, ~{left:,.0f}s left)",
            file=sys.stderr,
            flush=True,
        )


def sdk_messages(chat: Sequence[Message]) -> list[ChatCompletionMessageParam]:
    """A chat for the bare OpenAI SDK (the raw baselines). The gateway types a message as a
    plain ``{"role", "content"}`` dict; the SDK wants one TypedDict per role, of that shape."""
    return cast(list[ChatCompletionMessageParam], list(chat))
