"""``personahub synthesize --engine ray``: generation as Ray Data ``map_batches``.

Each Ray worker is an actor holding its own gateway client (rebuilt from the driver's
settings) and a :class:`~personahub.synthesis.synthesizer.Synthesizer`; it runs a batch of
items concurrently on its own event loop, up to ``concurrency`` requests in flight per
worker, and returns each item's outcome. The driver keeps everything that decides the
output: it plans the items, skips those the journal already holds, and settles outcomes
strictly in plan order through the same MinHash dedup and journal as the local engine. The
same input, options and seed therefore give the same item ids and the same kept set, and a
killed run resumes from the journal exactly as a local one does.

What differs from the local engine:

* ``--max-calls``/``--max-tokens-total`` budget each worker's client separately: the run
  may spend up to ``workers`` times the budget before every worker stops; the summary says
  so (:func:`~personahub.distributed.usage.budget_bound`).
* The response cache is each worker's own file at the configured path (shared on one
  machine through SQLite WAL; per node on a cluster).
* Usage in the summary is the sum of what the workers report.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from personahub.distributed.usage import USAGE_KEYS, UsageDelta, add_usage
from personahub.llm import ErrorKind, LLMClient, LLMSettings
from personahub.synthesis.job import Prepared, TaskSetup, kept_rows, synthesizer_for
from personahub.synthesis.records import write_output
from personahub.synthesis.synthesizer import (
    Item,
    ItemOutcome,
    SynthesisReport,
    Synthesizer,
    finish_report,
)


class _SynthWorker:
    """Ray actor body: generate a batch of items through this worker's own client."""

    def __init__(self, settings: LLMSettings, setup: TaskSetup) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = LLMClient(settings)
        self.synthesizer = synthesizer_for(self.client, setup)
        self.usage = UsageDelta()

    async def _batch(self, items: list[Item]) -> list[ItemOutcome]:
        return list(await asyncio.gather(*(self.synthesizer.process(i) for i in items)))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        items = [
            Item(int(i), str(pid), str(text), int(sample))
            for i, pid, text, sample in zip(
                batch["index"], batch["persona_id"], batch["persona"], batch["sample"], strict=True
            )
        ]
        outcomes = self.loop.run_until_complete(self._batch(items))
        self.client.flush()
        out: dict[str, Any] = {
            "index": np.array([o.item.index for o in outcomes], dtype=np.int64),
            "row": np.array([json.dumps(o.row) if o.row else "" for o in outcomes], dtype=object),
            "output": np.array([json.dumps(o.output) for o in outcomes], dtype=object),
            "reason": np.array([o.reason or "" for o in outcomes], dtype=object),
            "error": np.array([o.error or "" for o in outcomes], dtype=object),
            "tokens": np.array([o.tokens for o in outcomes], dtype=np.int64),
        }
        return {**out, **self.usage.columns(self.client, len(outcomes))}

    def __del__(self) -> None:
        # Close the HTTP connections on the loop that opened them.
        with contextlib.suppress(Exception):
            self.loop.run_until_complete(self.client.aclose())


def run_job_ray(
    client: LLMClient,
    prepared: Prepared,
    workers: int = 2,
    batch_size: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[SynthesisReport, dict[str, int]]:
    """Generate what the journal lacks on Ray workers, then write the output file.

    Ray must be initialised (:func:`personahub.distributed.engine.init_ray`).

    Args:
        client: The driver's gateway client: its settings are sent to the workers; it
            makes no calls itself.
        prepared: The checked job.
        workers: Ray actors generating concurrently.
        batch_size: Items per batch (default: twice the per-worker concurrency).
        on_progress: Called with (items settled now, tokens they used).

    Returns:
        The report and the workers' summed usage (calls, cache hits, tokens).
    """
    import ray.data

    synthesizer = synthesizer_for(client, prepared)
    journal = prepared.journal
    todo = journal.pending(prepared.items)
    report = SynthesisReport(planned=len(prepared.items))
    report.already_settled = sum(1 for item in prepared.items if item.key in journal)
    usage: Counter[str] = Counter()
    try:
        if todo:
            _generate(
                client,
                prepared,
                synthesizer,
                todo,
                report,
                usage,
                workers,
                batch_size,
                on_progress,
                ray.data,
            )
    finally:
        write_output(kept_rows(prepared), prepared.job.out)
    finish_report(report, prepared.items, journal)
    return report, {k: usage[k] for k in USAGE_KEYS}


def _generate(
    client: LLMClient,
    prepared: Prepared,
    synthesizer: Synthesizer,
    todo: list[Item],
    report: SynthesisReport,
    usage: Counter[str],
    workers: int,
    batch_size: int | None,
    on_progress: Callable[[int, int], None] | None,
    data: Any,
) -> None:
    """Stream outcomes from the workers and settle them in plan order."""
    size = batch_size or max(2 * synthesizer.concurrency, 8)
    context = data.DataContext.get_current()
    # Batches come back in plan order, so the reorder buffer below stays small.
    context.execution_options.preserve_order = True
    dataset = data.from_items(
        [
            {"index": i.index, "persona_id": i.persona_id, "persona": i.persona, "sample": i.sample}
            for i in todo
        ],
        override_num_blocks=max(1, min(len(todo) // size, 64 * workers)),
    ).map_batches(
        _SynthWorker,
        # Workers need the task, not the plan or the journal (the driver keeps those).
        fn_constructor_args=(client.settings, prepared.setup()),
        batch_size=size,
        batch_format="numpy",
        compute=data.ActorPoolStrategy(size=workers),
    )
    by_index = {item.index: item for item in todo}
    deduper = synthesizer.deduper(prepared.journal)
    finished: dict[int, ItemOutcome] = {}
    next_to_settle = 0
    for batch in dataset.iter_batches(batch_format="numpy", batch_size=None):
        add_usage(usage, batch)
        for index, row, output, reason, error, tokens in zip(
            batch["index"],
            batch["row"],
            batch["output"],
            batch["reason"],
            batch["error"],
            batch["tokens"],
            strict=True,
        ):
            finished[int(index)] = ItemOutcome(
                by_index[int(index)],
                row=json.loads(row) if row else None,
                output=json.loads(output),
                reason=reason or None,
                error=error or None,
                tokens=int(tokens),
            )
        ready: list[ItemOutcome] = []
        while next_to_settle < len(todo) and todo[next_to_settle].index in finished:
            ready.append(finished.pop(todo[next_to_settle].index))
            next_to_settle += 1
        if ready:
            synthesizer.settle(ready, deduper, prepared.journal, report)
            if on_progress is not None:
                on_progress(len(ready), sum(o.tokens for o in ready))
    if report.errors.get(ErrorKind.BUDGET_EXHAUSTED.value):
        report.stopped = "budget exhausted"
