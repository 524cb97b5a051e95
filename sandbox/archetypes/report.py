"""The report of an archetype run: shares over time, by segment, the archetypes, the calls
saved, and the fidelity gap (what answering per archetype costs against asking agents one by
one).

Intervals are Wilson 95% intervals over the agents that answered: they cover the agents' own
draws only, not the model's uncertainty, which one request per archetype cannot show; the
fidelity gap is the measure of that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
from rich.console import Console
from rich.table import Table

from sandbox.archetypes.population import AgentTable
from sandbox.archetypes.scenario import ArchetypeScenario
from sandbox.archetypes.state import PopulationState
from sandbox.archetypes.storage import AGENTS_FILE
from sandbox.forecast.answer_modes import option_labels
from sandbox.forecast.results import Series
from sandbox.forecast.stats import Estimate
from sandbox.rundb import RunDatabase, RunRow
from sandbox.scenario_loader import parse_scenario

EMBEDDED_NOTE = (
    "These answers come from the embedded model (SmolLM2-135M), which is plumbing for trying "
    "the tool offline, not a forecaster: do not read them as a forecast."
)


def wilson(k: int, n: int, z: float = 1.96) -> Estimate:
    """Share ``k / n`` with its Wilson score interval (sound at small ``n`` and near 0 or 1)."""
    if n == 0:
        return Estimate(None, None, None, 0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), n)


@dataclass(frozen=True)
class Loaded:
    run: RunRow
    scenario: ArchetypeScenario
    table: AgentTable | None
    state: PopulationState | None
    metrics: list[dict[str, Any]]
    folder: Path


def _load(database: RunDatabase, run: RunRow) -> Loaded:
    from sandbox.run_folders import run_folder

    scenario = parse_scenario(run.scenario_yaml, Path(run.scenario_path or "run.db"))
    assert isinstance(scenario, ArchetypeScenario)
    folder = run_folder(database.target, run.id)
    metrics = [{"step": m.step, **m.metrics} for m in database.step_metrics(run.id)]
    table = AgentTable.load(folder / AGENTS_FILE) if (folder / AGENTS_FILE).is_file() else None
    state_file = folder / "steps" / f"state_{run.last_step:04d}.parquet"
    state = (
        PopulationState.load(state_file) if run.last_step >= 0 and state_file.is_file() else None
    )
    return Loaded(run, scenario, table, state, metrics, folder)


def _final(loaded: Loaded) -> list[dict[str, Any]]:
    """Per question: each option's final share with its interval."""
    out = []
    for qi, question in enumerate(loaded.scenario.questions):
        labels = option_labels(question)
        answers = loaded.state.answers[:, qi] if loaded.state is not None else np.zeros(0)
        given = answers[answers >= 0]
        counts = np.bincount(given, minlength=len(labels)) if len(given) else np.zeros(len(labels))
        rows = [
            (label, wilson(int(c), len(given))) for label, c in zip(labels, counts, strict=True)
        ]
        out.append({"question": question, "n": len(given), "options": rows})
    return out


def _segments(loaded: Loaded) -> list[dict[str, Any]]:
    if loaded.table is None or loaded.state is None:
        return []
    names = loaded.scenario.segments or loaded.scenario.archetype.attributes
    question = loaded.scenario.questions[0]
    labels = option_labels(question)
    answers = loaded.state.answers[:, 0]
    out = []
    for name in names:
        if name not in loaded.table.codes:
            continue
        codes = loaded.table.codes[name]
        for code, value in enumerate(loaded.table.labels[name]):
            mine = answers[(codes == code) & (answers >= 0)]
            shares = [wilson(int((mine == o).sum()), len(mine)) for o in range(len(labels))]
            out.append({"segment": name, "value": value, "n": len(mine), "shares": shares})
    return out


def _plots(loaded: Loaded) -> list[str]:
    from sandbox.forecast.plots import time_series

    steps = [m["step"] for m in loaded.metrics]
    out = []
    for question in loaded.scenario.questions:
        series = []
        for label in option_labels(question):
            points = []
            for m in loaded.metrics:
                n = int(m.get(f"{question.id}:n") or 0)
                share = m.get(f"{question.id}={label}")
                points.append(
                    wilson(round((share or 0) * n), n)
                    if share is not None
                    else Estimate(None, None, None, 0)
                )
            series.append(Series(label, tuple(points)))
        if steps:
            out.append(time_series(steps, series, percent=True, ylabel=question.id))
    return out


def _segment_plots(loaded: Loaded) -> list[str]:
    """Per segment attribute: the share giving the first question's first option, per value,
    over the steps (from each step's state file)."""
    from sandbox.forecast.plots import time_series

    steps_dir = loaded.folder / "steps"
    states = [
        PopulationState.load(path)
        for m in loaded.metrics
        if (path := steps_dir / f"state_{m['step']:04d}.parquet").is_file()
    ]
    if loaded.table is None or not states:
        return []
    question = loaded.scenario.questions[0]
    first = option_labels(question)[0]
    out = []
    for name in loaded.scenario.segments or loaded.scenario.archetype.attributes:
        if name not in loaded.table.codes:
            continue
        codes = loaded.table.codes[name]
        series = []
        for code, value in enumerate(loaded.table.labels[name]):
            points = []
            for state in states:
                mine = state.answers[(codes == code), 0]
                mine = mine[mine >= 0]
                points.append(wilson(int((mine == 0).sum()), len(mine)))
            series.append(Series(value, tuple(points)))
        steps = [m["step"] for m in loaded.metrics][: len(states)]
        out.append(time_series(steps, series, percent=True, ylabel=f"{question.id}={first}"))
    return out


def _largest_archetypes(loaded: Loaded, limit: int = 20) -> list[dict[str, Any]]:
    """The last step's largest archetypes: who, what they saw, size and answer distribution."""
    import pyarrow.parquet as pq

    path = loaded.folder / "steps" / f"archetypes_{loaded.run.last_step:04d}.parquet"
    if not path.is_file():
        return []
    rows = pq.read_table(path).to_pylist()
    rows.sort(key=lambda r: -int(r["size"]))
    question = loaded.scenario.questions[0]
    labels = option_labels(question)
    return [
        {
            "key": r["key"],
            "size": r["size"],
            "probs": [r.get(f"{question.id}={label}") for label in labels],
        }
        for r in rows[:limit]
    ]


def render_report(env: jinja2.Environment, database: RunDatabase, run: RunRow) -> str:
    loaded = _load(database, run)
    calls = sum(int(m.get("calls") or 0) for m in loaded.metrics)
    per_agent = sum(int(m.get("per_agent_calls") or 0) for m in loaded.metrics)
    return env.get_template("archetype_report.html.j2").render(
        run=run,
        scenario=loaded.scenario,
        n_agents=loaded.table.n if loaded.table is not None else None,
        embedded_note=EMBEDDED_NOTE if run.backend == "local" else "",
        final=_final(loaded),
        segments=_segments(loaded),
        first_labels=option_labels(loaded.scenario.questions[0]),
        plots=_plots(loaded),
        segment_plots=_segment_plots(loaded),
        archetypes=_largest_archetypes(loaded),
        metrics=loaded.metrics,
        calls=calls,
        per_agent=per_agent,
        questions=loaded.scenario.questions,
    )


def print_summary(database: RunDatabase, run: RunRow, console: Console) -> None:
    loaded = _load(database, run)
    calls = sum(int(m.get("calls") or 0) for m in loaded.metrics)
    per_agent = sum(int(m.get("per_agent_calls") or 0) for m in loaded.metrics)
    n = loaded.table.n if loaded.table is not None else 0
    console.print(
        f"[bold]{run.name}[/] {run.status}: {run.last_step + 1}/{run.steps_total} steps, "
        f"{n:,} agents, {calls:,} model calls (one per agent would be {per_agent:,})",
        highlight=False,
    )
    if run.backend == "local":
        console.print(f"[yellow]note:[/] {EMBEDDED_NOTE}", highlight=False)
    table = Table(title="final answers (share of agents that answered, 95% Wilson interval)")
    for column in ("question", "option", "share", "interval", "n"):
        table.add_column(column)
    for entry in _final(loaded):
        for label, estimate in entry["options"]:
            table.add_row(
                entry["question"].id,
                label,
                estimate.text(percent=True),
                estimate.interval(percent=True),
                f"{entry['n']:,}",
            )
    console.print(table)
    last = loaded.metrics[-1] if loaded.metrics else {}
    gaps = [
        f"{q.id} {last[f'{q.id}:fidelity_gap']:.3f}"
        for q in loaded.scenario.questions
        if last.get(f"{q.id}:fidelity_gap") is not None
    ]
    if gaps:
        console.print("fidelity gap (TV, archetype vs agents asked one by one): " + ", ".join(gaps))


def samples(database: RunDatabase, run_id: str) -> list[Any]:
    """An archetype run has no chat transcripts to export: its replies are distributions."""
    return []


def live_figures(database: RunDatabase, run: RunRow) -> dict[str, Any]:
    """The run page's figures in ``sandbox serve``: the first question's shares per step (from
    the step metrics; no per-agent answers, and no graph colours: at this size the page shows
    the aggregates)."""
    scenario = parse_scenario(run.scenario_yaml, Path(run.scenario_path or "run.db"))
    assert isinstance(scenario, ArchetypeScenario)
    metrics = [m.metrics for m in database.step_metrics(run.id)]
    shares = []
    for question in scenario.questions:
        series = []
        for label in option_labels(question):
            points = []
            for m in metrics:
                n, share = int(m.get(f"{question.id}:n") or 0), m.get(f"{question.id}={label}")
                est = wilson(round((share or 0) * n), n) if share is not None else None
                points.append([est.value, est.low, est.high] if est else [None, None, None])
            series.append({"label": label, "points": points})
        shares.append({"question": question.id, "ask": question.ask, "series": series})
    last = metrics[-1] if metrics else {}
    figures = [
        {"id": key, "label": key, "text": str(last[key]), "interval": ""}
        for key in ("aware", "archetypes", "calls", "per_agent_calls")
        if key in last
    ]
    return {
        "figures": figures,
        "shares": shares,
        "colour_by": None,
        "categories": [],
        "answers": {},
    }
