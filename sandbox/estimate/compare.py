"""Actual beside estimated: the figures every run summary and report show.

A run stores its estimate when it starts (``runs.estimate``) and its usage as it goes
(``runs.usage``); both modes' summaries and report pages show them side by side through
:func:`cost_figures`. Runs recorded before estimates existed have none and show actual
figures only.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from rich.console import Console


class CostFigure(NamedTuple):
    """One figure: its label, the actual and estimated values as text, and actual/estimate."""

    label: str
    actual: str
    estimate: str
    ratio: str


def _ratio(actual: float, estimate: float) -> str:
    return f"{actual / estimate:.2f}x" if estimate else "n/a"


def cost_figures(usage: dict[str, Any] | None, estimate: dict[str, Any] | None) -> list[CostFigure]:
    """Calls, prompt, completion and total tokens and (when priced) money, actual beside the
    estimate; [] when the run has no estimate."""
    if not estimate:
        return []
    usage = usage or {}
    estimated_total = estimate["prompt_tokens"] + estimate["completion_tokens"]
    rows = [
        ("model calls", usage.get("calls", 0), estimate["calls"]),
        ("prompt tokens", usage.get("prompt_tokens", 0), estimate["prompt_tokens"]),
        ("completion tokens", usage.get("completion_tokens", 0), estimate["completion_tokens"]),
        ("total tokens", usage.get("total_tokens", 0), estimated_total),
    ]
    out = [CostFigure(label, f"{a:,}", f"{e:,}", _ratio(a, e)) for label, a, e in rows]
    if estimate.get("cost") is not None:
        actual_cost, estimated_cost = float(usage.get("cost", 0.0)), float(estimate["cost"])
        ratio = _ratio(actual_cost, estimated_cost)
        out.append(CostFigure("money", f"{actual_cost:,.4f}", f"{estimated_cost:,.4f}", ratio))
    return out


def print_cost(
    console: Console, usage: dict[str, Any] | None, estimate: dict[str, Any] | None
) -> None:
    """One line: each figure as actual / estimate (ratio); then what the estimate assumed."""
    figures = cost_figures(usage, estimate)
    if figures:
        parts = (f"{f.label} {f.actual} / {f.estimate} ({f.ratio})" for f in figures)
        line = "actual / estimate: " + ", ".join(parts)
        hits = int((usage or {}).get("cache_hits") or 0)
        if hits:
            # A rerun answered from the cache costs nothing: say so, not just "0.00x".
            line += f"; {hits:,} answers came from the response cache (the estimate assumes none)"
        console.print(line, highlight=False, soft_wrap=True)
        for assumption in (estimate or {}).get("assumptions", []):
            console.print(f"the estimate assumed {assumption}", highlight=False, soft_wrap=True)
