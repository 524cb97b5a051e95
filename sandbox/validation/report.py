"""The calibration report: scores with the baselines in one table, per question, overall and
per group; as an HTML page beside the run's report (``calibration.html``) and a Rich table.

Everything is drawn from a :class:`~sandbox.validation.calibrate.CalibrationResult` (the run
folder's ``calibration.json``), so re-reporting never recomputes.
"""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sandbox.report import environment
from sandbox.validation.results import ALL, CalibrationResult, ScoreRow

CALIBRATION_HTML = "calibration.html"
METHODS = {
    "uniform": "uniform guess",
    "overall": "overall real shares",
    "logistic": "logistic regression (demographics)",
    "llm": "persona simulation",
}
COLUMNS = (
    ("simbench", "SimBench", 1),
    ("w1", "1-W1/(k-1)", 3),
    ("ks", "KS", 3),
    ("dispersion", "disp.", 2),
    ("accuracy", "acc.", 3),
    ("log_loss", "log-loss", 3),
)
EMBEDDED_NOTE = (
    "This calibration ran on the embedded model (SmolLM2-135M), which is plumbing, not a "
    "forecaster: its scores say the pipeline works, not how well personas predict people. "
    "Point the gateway at a served model for a real calibration."
)


SHORT = {"uniform": "uniform", "overall": "overall", "logistic": "logistic", "llm": "personas"}
"""Method names in the terminal, where the table must fit 80 columns."""


def method_name(result: CalibrationResult, method: str, short: bool = False) -> str:
    """How a method is shown; the simulation's row names its answer mode."""
    names = SHORT if short else METHODS
    name = names.get(method, method)
    return f"{name} ({result.answer_mode})" if method == "llm" else name


def _fmt(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def cells(row: ScoreRow) -> list[str]:
    """The score columns of one row, formatted."""
    return [_fmt(getattr(row.scores, key), digits) for key, _, digits in COLUMNS]


def overall_rows(result: CalibrationResult, question: str) -> list[ScoreRow]:
    return [r for r in result.rows if r.question == question and r.group == ALL]


def group_rows(result: CalibrationResult, question: str) -> list[ScoreRow]:
    return [r for r in result.rows if r.question == question and r.group != ALL]


def notes(result: CalibrationResult) -> list[str]:
    """What a reader must know before reading the scores."""
    out = []
    if result.embedded:
        out.append(EMBEDDED_NOTE)
    failed = {q: n for q, n in result.unanswered.items() if n}
    if failed:
        counts = ", ".join(f"{q}: {n}" for q, n in failed.items())
        out.append(
            f"Respondents without a valid simulated answer count as a uniform guess ({counts})."
        )
    if result.kind == "counts":
        out.append(
            "Count data: the real shares are the table's; personas were drawn from each "
            "group's share, one demographic at a time. No per-respondent scores or logistic "
            "baseline without individual answers."
        )
    return out


def write_html(result: CalibrationResult, run_dir: Path) -> Path:
    """Write ``calibration.html`` into the run folder and return its path."""
    html = (
        environment()
        .get_template("calibration.html.j2")
        .render(
            r=result,
            notes=notes(result),
            columns=COLUMNS,
            method_name=lambda m: method_name(result, m),
            cells=cells,
            overall_rows=lambda q: overall_rows(result, q),
            group_rows=lambda q: group_rows(result, q),
        )
    )
    path = run_dir / CALIBRATION_HTML
    scratch = path.with_suffix(f".tmp{os.getpid()}")  # a browser never sees half a page
    scratch.write_text(html, encoding="utf-8")
    scratch.replace(path)
    return path


def print_table(result: CalibrationResult, console: Console) -> None:
    """The overall scores of every method per question, then the SimBench score per group
    (short method names; the HTML page has the full ones and a legend)."""
    for note in notes(result):
        console.print(f"[bold yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    for qid, info in result.questions.items():
        table = Table(title=f"{qid}: {info.ask}", title_justify="left")
        table.add_column("method")
        table.add_column("n", justify="right")
        for _, title, _ in COLUMNS:
            table.add_column(title, justify="right")
        for row in overall_rows(result, qid):
            table.add_row(method_name(result, row.method, True), str(row.scores.n), *cells(row))
        console.print(table)
        by_group = group_rows(result, qid)
        if by_group:
            methods = list(dict.fromkeys(r.method for r in by_group))
            groups = Table(title=f"{qid}: SimBench score per group", title_justify="left")
            groups.add_column("group")
            groups.add_column("n", justify="right")
            for method in methods:
                groups.add_column(method_name(result, method, True), justify="right")
            keys = list(dict.fromkeys((r.group, r.value) for r in by_group))
            for group, value in keys:
                mine = {r.method: r for r in by_group if (r.group, r.value) == (group, value)}
                n = next(iter(mine.values())).scores.n
                shown = [_fmt(mine[m].scores.simbench, 1) if m in mine else "" for m in methods]
                groups.add_row(f"{group} = {value}", str(n), *shown)
            console.print(groups)
    console.print(
        f"{result.respondents:,} held-out respondents, {result.train:,} for fitting the "
        f"baselines; model {result.backend}:{result.model}, answer mode {result.answer_mode}",
        highlight=False,
    )
