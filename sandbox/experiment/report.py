"""The experiment report: effects per question as a table and a forest plot, per-arm curves
over time, per-segment effects, and side-by-side transcripts of the same persona in each arm.

One self-contained HTML page (charts are inline PNGs; nothing is loaded from anywhere) and a
terminal summary; an experiment's page links each run's own ``report.html``
(:func:`write_run_reports`). ``sandbox compare`` uses the same page for any runs that asked the same
questions, the first run as the reference.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from sandbox.experiment.effects import Effect, RunAnswers, compare, holm
from sandbox.forecast.plots import forest, time_series
from sandbox.forecast.results import Series
from sandbox.forecast.stats import Estimate
from sandbox.report import environment, write_report
from sandbox.rundb import RunDatabase

REPORT_NAME = "experiment.html"
TRANSCRIPT_PERSONAS = 3


@dataclass(frozen=True, slots=True)
class Group:
    """One condition: its label and its runs (one per seed), compared against ``reference``
    (None for a reference itself)."""

    label: str
    runs: tuple[tuple[RunDatabase, str], ...]  # (database, run id) per seed
    reference: str | None


@dataclass(frozen=True, slots=True)
class TranscriptColumn:
    label: str
    steps: tuple[dict[str, Any], ...]  # step, reaction, answers


@dataclass(frozen=True, slots=True)
class SideBySide:
    persona: str
    columns: tuple[TranscriptColumn, ...]


@dataclass(frozen=True, slots=True)
class ExperimentView:
    """What the page and the summary show."""

    title: str
    kind: str  # "experiment" or "comparison"
    runs: tuple[dict[str, Any], ...]
    effects: tuple[Effect, ...]
    segment_effects: tuple[Effect, ...]
    forest: str
    curves: tuple[tuple[str, str], ...]
    transcripts: tuple[SideBySide, ...]

    @property
    def n_comparisons(self) -> int:
        return len(self.effects)


def groups_of(db: RunDatabase) -> list[Group]:
    """An experiment's conditions: each arm at each sweep point, against the control arm at
    the same point (with a single arm: against the first point)."""
    rows = db.experiment_runs()
    by_label: dict[str, list[Any]] = {}
    for row in rows:
        point = ", ".join(f"{k}={v}" for k, v in row.point.items())
        by_label.setdefault(f"{row.arm} [{point}]" if point else row.arm, []).append(row)
    first = {label: members[0] for label, members in by_label.items()}
    arms = {row.arm for row in rows}
    out = []
    for label, members in by_label.items():
        head = members[0]
        if len(arms) > 1:
            reference = next(
                (other for other, r in first.items() if r.control and r.point == head.point), None
            )
        else:
            reference = next(iter(first))
        out.append(
            Group(
                label,
                tuple((db, r.run_id) for r in sorted(members, key=lambda r: r.seed_index)),
                None if reference == label else reference,
            )
        )
    return out


def build_view(
    groups: list[Group], title: str, kind: str, reports: Mapping[str, str] | None = None
) -> ExperimentView:
    """Effects, charts and transcripts of ``groups``; ``reports`` gives each run's own
    report page (run id -> link relative to the page), where written.

    Raises:
        ValueError: Runs that asked different questions or share no personas.
    """
    answers = {g.label: [RunAnswers.read(db, run_id) for db, run_id in g.runs] for g in groups}
    effects: list[Effect] = []
    for group in groups:
        if group.reference is not None:
            effects += compare(answers[group.reference], answers[group.label], group.reference,
                               group.label)  # fmt: skip
    effects = holm(effects)
    overall = [e for e in effects if not e.segment]
    runs = []
    for group in groups:
        for seed_index, (db, run_id) in enumerate(group.runs):
            run = db.run(run_id)
            assert run is not None
            usage, estimate = run.usage or {}, run.estimate
            estimated = (
                estimate["prompt_tokens"] + estimate["completion_tokens"] if estimate else None
            )
            runs.append({"label": group.label, "seed": seed_index, "run_id": run_id,
                         "status": run.status, "steps": f"{run.last_step + 1}/{run.steps_total}",
                         "model": f"{run.backend}:{run.model}", "calls": usage.get("calls", 0),
                         "tokens": usage.get("total_tokens", 0),
                         "estimated_tokens": estimated,
                         "report": (reports or {}).get(run_id)})  # fmt: skip
    shown = [e for e in overall if not (e.percent and _is_last_option(e, overall))]
    plot = (
        forest(
            [f"{e.name}: {e.treatment} vs {e.control}" for e in shown],
            [_scaled(e) for e in shown],
            xlabel="effect (percentage points for shares, units for means)",
        )
        if shown
        else ""
    )
    return ExperimentView(
        title=title,
        kind=kind,
        runs=tuple(runs),
        effects=tuple(overall),
        segment_effects=tuple(e for e in effects if e.segment),
        forest=plot,
        curves=tuple(_curves(groups)),
        transcripts=tuple(_transcripts(groups)),
    )


def _is_last_option(effect: Effect, effects: list[Effect]) -> bool:
    """A two-option question's second share mirrors the first: the plot shows one."""
    same = [e for e in effects if e.question == effect.question and e.treatment == effect.treatment]
    return len(same) == 2 and same[1] is effect


def _scaled(effect: Effect) -> tuple[float, float, float]:
    k = 100.0 if effect.percent else 1.0
    return k * effect.diff, k * effect.low, k * effect.high


def _curves(groups: list[Group]) -> list[tuple[str, str]]:
    """Per metric: one line per condition, the mean over its seeds, the band their range."""
    metrics: dict[str, dict[str, list[list[float | None]]]] = {}
    for group in groups:
        for db, run_id in group.runs:
            rows = db.step_metrics(run_id)
            for key in rows[0].metrics if rows else {}:
                if "=" in key or key.endswith(":mean"):
                    series = metrics.setdefault(key, {}).setdefault(group.label, [])
                    series.append([r.metrics.get(key) for r in rows])
    charts = []
    for key, by_group in metrics.items():
        question, _, option = key.partition("=")
        if option and any(
            k.startswith(question + "=") for k in list(metrics)[: list(metrics).index(key)]
        ):
            continue  # the first option of a choice question stands for it
        lines = []
        steps = 0
        for label, runs in by_group.items():
            steps = max(len(r) for r in runs)
            matrix = np.array(
                [
                    [np.nan if v is None else v for v in r] + [np.nan] * (steps - len(r))
                    for r in runs
                ],
                float,
            )
            points = []
            for column in matrix.T:
                ok = column[~np.isnan(column)]
                points.append(
                    Estimate(float(ok.mean()), float(ok.min()), float(ok.max()), len(ok))
                    if ok.size
                    else Estimate(None, None, None, 0)
                )
            lines.append(Series(label, tuple(points)))
        percent = bool(option)
        charts.append(
            (
                key,
                time_series(
                    range(steps), lines, percent=percent, ylabel=key if percent else question
                ),
            )
        )
    return charts


def _transcripts(groups: list[Group]) -> list[SideBySide]:
    """The first replicate of each condition, for a few personas who answered in all."""
    first_runs = [(g.label, g.runs[0]) for g in groups]
    answered: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for label, (db, run_id) in first_runs:
        persona_of = {a.agent_id: a.persona_id for a in db.agents(run_id)}
        for row in db.interactions(run_id):
            if row.error_kind is None and isinstance(row.parsed, dict):
                answers = {k: v for k, v in row.parsed.items() if k not in ("reaction", "post")}
                entry = {"step": row.step, "reaction": row.reaction, "answers": answers}
                answered.setdefault(persona_of[row.agent_id], {}).setdefault(label, []).append(
                    entry
                )
    everywhere = [p for p, by in answered.items() if len(by) == len(first_runs)]
    texts = {}
    if first_runs:
        db, run_id = first_runs[0][1]
        texts = {a.persona_id: a.persona for a in db.agents(run_id)}
    return [
        SideBySide(
            texts.get(pid, pid),
            tuple(TranscriptColumn(label, tuple(answered[pid][label])) for label, _ in first_runs),
        )
        for pid in sorted(everywhere)[:TRANSCRIPT_PERSONAS]
    ]


def write_run_reports(database: str | Path, folder: Path) -> dict[str, str]:
    """Each run's own ``report.html`` (as a lone run's, with its cost beside its estimate),
    in ``folder/<run-id>/``; returns run id -> the page's path relative to ``folder``."""
    db = RunDatabase(database, must_exist=True)
    try:
        run_ids = [row.run_id for row in db.experiment_runs()]
    finally:
        db.close()
    return {
        run_id: write_report(database, run_id, folder / run_id).relative_to(folder).as_posix()
        for run_id in run_ids
    }


def write_experiment_report(view: ExperimentView, folder: Path) -> Path:
    """Write the page into ``folder``; returns its path."""
    html = environment().get_template("experiment.html.j2").render(v=view)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / REPORT_NAME
    scratch = path.with_suffix(f".tmp{os.getpid()}")  # a browser never sees half a page
    scratch.write_text(html, encoding="utf-8")
    scratch.replace(path)
    return path


def _fmt(effect: Effect, value: float) -> str:
    return f"{100 * value:+.1f} pp" if effect.percent else f"{value:+.2f}"


def _level(effect: Effect, value: float) -> str:
    return f"{100 * value:.1f}%" if effect.percent else f"{value:.2f}"


def print_experiment_summary(view: ExperimentView, console: Console) -> None:
    """The effects as a table, with the multiple-comparisons note."""
    table = Table(title=f"{view.title}: effects (treatment - control, 95% paired bootstrap)")
    for column in ("question", "arms", "control", "treatment", "effect", "95% interval",
                   "seed spread", "p", "p (Holm)"):  # fmt: skip
        table.add_column(column)
    for e in view.effects:
        table.add_row(
            e.name,
            f"{e.treatment} vs {e.control}",
            _level(e, e.control_value),
            _level(e, e.treatment_value),
            _fmt(e, e.diff),
            f"{_fmt(e, e.low)} to {_fmt(e, e.high)}",
            f"{100 * e.spread:.1f} pp" if e.percent else f"{e.spread:.2f}",
            f"{e.p:.4f}",
            f"{e.p_holm:.4f}" if e.p_holm is not None else "",
        )
    console.print(table)
    if view.n_comparisons > 1:
        console.print(
            f"note: {view.n_comparisons} comparisons; read the Holm-adjusted p-values",
            highlight=False,
        )
