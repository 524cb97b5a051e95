"""Persona-driven synthesis: plan items, generate concurrently, verify, dedup, journal.

An *item* is one output for one persona (``<persona id>#<sample>``; a persona is used again,
with a new sample index, when ``n`` exceeds the personas selected). Items run concurrently
through the gateway, ``concurrency`` requests in flight; a math item is one generation plus
k solving requests. Items are *settled* strictly in plan order through a small reorder
buffer, so the MinHash dedup (which keeps the first of two near-duplicates) decides the same
way however requests interleave, and a rerun of the same options gives the same file.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from personahub.dedup.minhash import MinHashDeduper, tokenize
from personahub.llm import ErrorKind, LLMClient, LLMError, LLMRequest, LLMResult
from personahub.synthesis import verify
from personahub.synthesis.prompting import Example, generation_request, solve_request
from personahub.synthesis.records import Journal, SynthesisRow
from personahub.synthesis.tasks import TaskSpec
from personahub.worlds import World

T = TypeVar("T", bound=BaseModel)

SOLVE_TEMPERATURE = 0.7
# Word-set Jaccard at which an output counts as a copy of a worked example: small models
# in few-shot modes often echo the example with a word or two changed.
COPY_THRESHOLD = 0.8
DROP_REASONS = ("empty", "refused", "copied_example", "unverified", "invalid_tool", "duplicate")


@dataclass(frozen=True, slots=True)
class Item:
    """One planned output."""

    index: int
    persona_id: str
    persona: str
    sample: int

    @property
    def key(self) -> str:
        return f"{self.persona_id}#{self.sample}"


def plan_items(personas: Sequence[tuple[str, str]], n: int | None) -> list[Item]:
    """``n`` items over ``personas`` (id, text), cycling with a new sample index."""
    if not personas:
        return []
    total = len(personas) if n is None else n
    return [Item(i, *personas[i % len(personas)], sample=i // len(personas)) for i in range(total)]


@dataclass
class SynthesisReport:
    """What one run did. ``dropped`` and ``errors`` count items of this run by reason;
    ``gave_up_now`` counts the failed items of this run that reached the attempt limit,
    ``gave_up`` all planned items given up so far."""

    planned: int = 0
    already_settled: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    stopped: str | None = None
    total_kept: int = 0
    gave_up_now: int = 0
    gave_up: int = 0

    @property
    def settled(self) -> int:
        return self.kept + sum(self.dropped.values())

    @property
    def retriable(self) -> int:
        """Failed items of this run that the next run retries."""
        return sum(self.errors.values()) - self.gave_up_now


def finish_report(report: SynthesisReport, items: Sequence[Item], journal: Journal) -> None:
    """Fill in the totals that the journal holds after a run."""
    report.total_kept = len(journal.kept_rows())
    report.gave_up = sum(1 for item in items if journal.gave_up(item.key))


@dataclass
class ItemOutcome:
    """One processed item: a row, a drop reason or an error; ``output`` is the generated
    content (kept for the rejects file when the item is not kept)."""

    item: Item
    row: dict[str, Any] | None = None
    output: dict[str, Any] | None = None
    reason: str | None = None
    error: str | None = None
    tokens: int = 0


class Synthesizer:
    """Runs one task over planned items into a journal.

    Args:
        client: The LLM gateway.
        spec: The task.
        mode: ``zero-shot``, ``few-shot`` or ``persona-few-shot``.
        examples: Worked examples (few-shot modes).
        world: The game world (``npc`` task).
        template_version: Recorded in every row.
        seed: Mixed into every request seed.
        concurrency: Requests in flight (the gateway's setting when None).
        temperature: Generation temperature (the gateway's default when None).
        verify_math: Run the 2-of-k check on math problems.
        solve_k: Solving attempts per math problem.
        agree: Agreeing answers needed to keep a math problem.
        dedup_threshold: MinHash Jaccard threshold over outputs (None disables dedup).
    """

    def __init__(
        self,
        client: LLMClient,
        spec: TaskSpec,
        mode: str,
        examples: list[Example],
        world: World | None,
        template_version: str,
        seed: int = 0,
        concurrency: int | None = None,
        temperature: float | None = None,
        verify_math: bool = True,
        solve_k: int = 3,
        agree: int = 2,
        dedup_threshold: float | None = 0.9,
    ) -> None:
        self.client = client
        self.spec = spec
        self.mode = mode
        self.examples = examples
        self.world = world
        self.template_version = template_version
        self.seed = seed
        self.concurrency = concurrency or client.settings.concurrency
        self.temperature = temperature
        self.verify_math = verify_math and spec.name == "math"
        self.solve_k = solve_k
        self.agree = agree
        self.dedup_threshold = dedup_threshold
        self._calls = asyncio.Semaphore(self.concurrency)
        self._example_words = [set(tokenize(spec.text_of(e.output))) for e in examples]
        self._stop: str | None = None

    async def _call(self, request: LLMRequest[T]) -> LLMResult[T]:
        async with self._calls:
            if self._stop is not None:
                # Queued behind the call that hit the budget: do not even ask the gateway.
                return LLMResult(error=LLMError(ErrorKind.BUDGET_EXHAUSTED, self._stop, 0))
            result = await self.client.complete(request)
        if result.error is not None and result.error.kind is ErrorKind.BUDGET_EXHAUSTED:
            self._stop = "budget exhausted"
        return result

    def _copied(self, text: str) -> str | None:
        words = set(tokenize(text))
        for example in self._example_words:
            union = len(words | example)
            if union and len(words & example) / union >= COPY_THRESHOLD:
                return "copied_example"
        return None

    def _params(self, request: LLMRequest) -> dict[str, Any]:
        settings = self.client.settings
        return {
            "temperature": request.temperature
            if request.temperature is not None
            else settings.temperature,
            "max_tokens": request.max_tokens,
            "seed": request.seed,
        }

    async def process(self, item: Item) -> ItemOutcome:
        """Generate and check one item (not yet deduplicated or journaled)."""
        request = generation_request(
            self.spec,
            item.persona,
            self.mode,
            self.examples,
            self.world,
            item.key,
            self.seed,
            self.temperature,
        )
        result = await self._call(request)
        tokens = result.usage.total_tokens
        if result.error is not None:
            return ItemOutcome(item, error=result.error.kind.value, tokens=tokens)
        output = result.raw_json() or {}
        text = self.spec.text_of(output)
        reason = verify.empty_or_refused(text) or self._copied(text)
        if reason is not None:
            return ItemOutcome(item, output=output, reason=reason, tokens=tokens)
        # Tasks without a check say so: ``passed`` is null, not a pass nobody made.
        verification: dict[str, Any] = {"method": "none", "passed": None, "status": "unchecked"}
        if self.verify_math:
            solves = await asyncio.gather(
                *(
                    self._call(solve_request(output["problem"], a, self.seed, SOLVE_TEMPERATURE))
                    for a in range(self.solve_k)
                )
            )
            tokens += sum(s.usage.total_tokens for s in solves)
            answers = [s.parsed.answer if s.parsed is not None else None for s in solves]
            if all(a is None for a in answers):
                # Nothing was solved (e.g. the endpoint is down): retry the item next run.
                kinds = [s.error.kind.value for s in solves if s.error is not None]
                kind = kinds[0] if kinds else "internal"
                return ItemOutcome(item, output=output, error=kind, tokens=tokens)
            check = verify.majority(answers, need=self.agree)
            verification = check.to_json()
            if not check.passed:
                return ItemOutcome(item, output=output, reason="unverified", tokens=tokens)
        if self.spec.name == "tool":
            verification = verify.tool_check(output)
            if not verification["passed"]:
                return ItemOutcome(item, output=output, reason="invalid_tool", tokens=tokens)
            output = {**output, "openai_tool": verify.openai_tool(output)}
        row = SynthesisRow(
            id=f"{self.spec.name}:{self.mode}:{item.key}",
            task=self.spec.name,
            mode=self.mode,
            persona_id=item.persona_id,
            persona=item.persona,
            sample=item.sample,
            output=output,
            text=text,
            verification=verification,
            template_version=self.template_version,
            model=result.model or self.client.model,
            backend=self.client.settings.backend,
            params=self._params(request),
            usage={
                "prompt_tokens": result.usage.prompt_tokens,
                "completion_tokens": result.usage.completion_tokens,
            },
        )
        return ItemOutcome(item, row=row.model_dump(mode="json"), output=output, tokens=tokens)

    def deduper(self, journal: Journal) -> MinHashDeduper | None:
        """The output deduper, seeded with the rows the journal already kept."""
        if self.dedup_threshold is None:
            return None
        deduper = MinHashDeduper(threshold=self.dedup_threshold)
        rows = journal.kept_rows()
        if rows:
            deduper.add_batch([r["id"] for r in rows], [r["text"] for r in rows])
        return deduper

    def settle(
        self,
        outcomes: list[ItemOutcome],
        deduper: MinHashDeduper | None,
        journal: Journal,
        report: SynthesisReport,
    ) -> None:
        """Decide duplicates among finished items (in plan order) and journal them."""
        candidates = [(o, o.row) for o in outcomes if o.row is not None]
        if deduper is not None and candidates:
            keep = deduper.add_batch(
                [row["id"] for _, row in candidates], [row["text"] for _, row in candidates]
            )
            for (outcome, _), kept in zip(candidates, keep, strict=True):
                if not kept:
                    outcome.row, outcome.reason = None, "duplicate"
        entries: list[dict[str, Any]] = []
        rejects: list[dict[str, Any]] = []
        for outcome in outcomes:
            key = outcome.item.key
            attempt = journal.attempts.get(key, 0) + 1
            if outcome.error == ErrorKind.BUDGET_EXHAUSTED.value:
                # Never sent (or cut off by the user's budget): not the item's fault.
                report.errors[outcome.error] += 1
            elif outcome.error is not None:
                report.errors[outcome.error] += 1
                entries.append(
                    {"item": key, "status": "failed", "error": outcome.error, "attempt": attempt}
                )
                if attempt >= journal.max_attempts:
                    report.gave_up_now += 1
                    rejects.append(self._reject(outcome, "gave_up", attempt))
            elif outcome.row is not None:
                report.kept += 1
                entries.append({"item": key, "status": "kept", "row": outcome.row})
            else:
                report.dropped[outcome.reason or "empty"] += 1
                entries.append({"item": key, "status": "dropped", "reason": outcome.reason})
                rejects.append(self._reject(outcome, outcome.reason or "empty", attempt))
        journal.append(entries, rejects)

    def _reject(self, outcome: ItemOutcome, reason: str, attempt: int) -> dict[str, Any]:
        """A rejects-file line: what was made for whom, and why it was not kept."""
        item = outcome.item
        return {
            "item": item.key,
            "task": self.spec.name,
            "mode": self.mode,
            "persona_id": item.persona_id,
            "persona": item.persona,
            "reason": reason,
            "error": outcome.error,
            "content": outcome.output,
            "attempt": attempt,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    async def run(
        self,
        items: Sequence[Item],
        journal: Journal,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> SynthesisReport:
        """Generate every item the journal neither settled nor gave up.

        Args:
            items: The plan.
            journal: Settled items so far; appended to as items settle.
            on_progress: Called with (items settled now, tokens they used).

        Returns:
            The counts of this run. Stops early (``report.stopped``) on an exhausted budget.
        """
        report = SynthesisReport(planned=len(items))
        todo = journal.pending(items)
        report.already_settled = sum(1 for item in items if item.key in journal)
        deduper = self.deduper(journal)
        window = max(2 * self.concurrency, 8)
        finished: dict[int, ItemOutcome] = {}
        running: set[asyncio.Task[ItemOutcome]] = set()
        next_to_start = next_to_settle = 0
        while next_to_settle < len(todo):
            while (
                self._stop is None
                and next_to_start < len(todo)
                and next_to_start - next_to_settle < window
            ):
                running.add(asyncio.create_task(self.process(todo[next_to_start])))
                next_to_start += 1
            if not running:
                break
            done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                outcome = task.result()
                finished[outcome.item.index] = outcome
            ready: list[ItemOutcome] = []
            while next_to_settle < len(todo) and todo[next_to_settle].index in finished:
                ready.append(finished.pop(todo[next_to_settle].index))
                next_to_settle += 1
            if ready:
                self.settle(ready, deduper, journal, report)
                if on_progress is not None:
                    on_progress(len(ready), sum(o.tokens for o in ready))
        report.stopped = self._stop
        finish_report(report, items, journal)
        return report
