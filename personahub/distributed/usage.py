"""Gateway usage of Ray workers, carried back to the driver inside the result batches.

Each worker's client meters its own calls; a worker reports what it used since its previous
batch in extra columns of the batch's first row, and the driver sums those columns.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

USAGE_KEYS = ("calls", "cache_hits", "prompt_tokens", "completion_tokens", "retries")


class UsageDelta:
    """A worker's usage since its previous batch, as batch columns."""

    def __init__(self) -> None:
        self.reported: Counter[str] = Counter()

    def columns(self, client: Any, rows: int) -> dict[str, np.ndarray]:
        """One int column per usage key: the delta on the first row, zeros below."""
        usage = client.usage()
        delta = {k: int(usage.get(k, 0)) - self.reported[k] for k in USAGE_KEYS}
        self.reported.update(delta)
        out = {}
        for key in USAGE_KEYS:
            column = np.zeros(rows, dtype=np.int64)
            if rows:
                column[0] = delta[key]
            out[key] = column
        return out


def budget_bound(max_calls: int | None, max_total_tokens: int | None, workers: int) -> str | None:
    """What a ``--max-calls``/``--max-tokens-total`` budget means on ``workers`` Ray workers,
    for the run summary; None without a budget.

    Each worker's gateway enforces the budget on its own calls (the call budget exactly, see
    :class:`~personahub.llm.meter.BudgetLayer`); the budget is not shared, so the run as a
    whole may spend up to ``workers`` times it.
    """
    parts = []
    if max_calls is not None:
        parts.append(f"{workers * max_calls:,} calls ({max_calls:,} per worker)")
    if max_total_tokens is not None:
        parts.append(
            f"{workers * max_total_tokens:,} tokens ({max_total_tokens:,} per worker, plus the"
            " calls in flight when a worker reaches it)"
        )
    if not parts:
        return None
    return f"budget applies per Ray worker ({workers}): this run may spend up to " + (
        " and ".join(parts)
    )


def add_usage(totals: Counter[str], batch: dict[str, np.ndarray]) -> None:
    """Add a result batch's usage columns to the driver's totals."""
    for key in USAGE_KEYS:
        totals[key] += int(batch[key].sum())
