"""Progress bars shared by the long-running commands (``build``, ``synthesize``)."""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from personahub.cli.common import console


class CountColumn(ProgressColumn):
    """``done/total`` (or just ``done`` when the total is unknown)."""

    def render(self, task: Task) -> Text:
        done = f"{task.completed:,.0f}"
        return Text(f"{done}/{task.total:,.0f}" if task.total is not None else done)


class RateColumn(ProgressColumn):
    """Items per second over rich's recent-speed window."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.2f}/s" if speed else "-/s", style="progress.data.speed")


class TokenRateColumn(ProgressColumn):
    """Tokens per second since the start, from the task's ``tokens`` field."""

    def render(self, task: Task) -> Text:
        tokens = task.fields.get("tokens")
        elapsed = task.finished_time or task.elapsed
        if tokens is None or not elapsed:
            return Text("")
        return Text(f"{tokens / elapsed:,.0f} tok/s", style="progress.data.speed")


def progress(tokens: bool = False) -> Progress:
    """A progress display: label, bar, count, items/s (and tokens/s), elapsed time."""
    columns: list[ProgressColumn] = [
        TextColumn("[bold]{task.description:<30}"),
        BarColumn(),
        CountColumn(),
        RateColumn(),
    ]
    if tokens:
        columns.append(TokenRateColumn())
    return Progress(*columns, TimeElapsedColumn(), console=console)
