"""Forecast mode's report: the HTML page's numbers, charts and transcripts, and the terminal
summary.

The numbers come from :mod:`sandbox.forecast.analysis`, the charts from
:mod:`sandbox.forecast.plots` (base64 PNGs). The transcripts show what each sampled agent
saw (the observations its interactions record) and what it answered. The page's frame, and
the choice of report by mode, are :mod:`sandbox.report`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jinja2
import numpy as np
from rich.console import Console
from rich.table import Table

from personahub.llm.meter import endpoint_lines
from sandbox.coverage import EventReach, recorded_reach
from sandbox.estimate.compare import cost_figures, print_cost
from sandbox.forecast import plots
from sandbox.forecast.analysis import build_forecast, segment_value
from sandbox.forecast.resolution import resolved, scores_table
from sandbox.forecast.results import Forecast
from sandbox.forecast.stats import SMALL_N
from sandbox.raking import WeightSummary
from sandbox.run_llm import embedded_model_caveat
from sandbox.rundb import AgentRow, InteractionRow, RunDatabase, RunRow


@dataclass(frozen=True, slots=True)
class TranscriptStep:
    """One decision of an agent: what it saw that step and what it answered."""

    step: int
    observations: list[str]
    reaction: str
    answers: dict[str, Any]
    post: str
    error: str = ""


@dataclass(frozen=True, slots=True)
class Transcript:
    agent_id: int
    persona: str
    attributes: dict[str, Any]
    community: int
    steps: list[TranscriptStep] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TranscriptGroup:
    """The transcripts shown for one value of one segment."""

    segment: str
    value: str
    size: int
    transcripts: list[Transcript]


def _transcript(agent: AgentRow, rows: list[InteractionRow], qids: list[str]) -> Transcript:
    steps = []
    for row in rows:
        parsed = row.parsed if row.error_kind is None and isinstance(row.parsed, dict) else None
        error = "" if parsed else f"{row.error_kind or 'no answer'}: {row.error_message or ''}"
        steps.append(
            TranscriptStep(
                step=row.step,
                observations=[f"{o['source']}: {o['content']}" for o in row.observations or []],
                reaction=str((parsed or {}).get("reaction", "")),
                answers={q: parsed[q] for q in qids if q in parsed} if parsed else {},
                post=str((parsed or {}).get("post", "")),
                error=error.strip().rstrip(":"),
            )
        )
    return Transcript(agent.agent_id, agent.persona, dict(agent.attributes or {}),
                      agent.community, steps)  # fmt: skip


def transcripts(db: RunDatabase, forecast: Forecast, seed: int = 0) -> list[TranscriptGroup]:
    """A sample of agents per segment value (``report.transcripts_per_segment`` each).

    Agents who took part are preferred; the pick is seeded, so a report is reproducible.
    """
    per = forecast.scenario.report.transcripts_per_segment
    if per == 0:
        return []
    agents = db.agents(forecast.run_id)
    by_agent: dict[int, list[InteractionRow]] = {}
    for row in db.interactions(forecast.run_id):
        by_agent.setdefault(row.agent_id, []).append(row)
    qids = [q.id for q in forecast.scenario.questions]
    rng = np.random.default_rng(seed)
    breakdowns: list[tuple[str, list[tuple[str, list[AgentRow]]]]] = []
    for seg in forecast.segments:
        members: dict[str, list[AgentRow]] = {g.value: [] for g in seg.groups}
        for agent in agents:
            members.setdefault(segment_value(agent, seg.key), []).append(agent)
        breakdowns.append((seg.key, list(members.items())))
    if not breakdowns:
        breakdowns = [("all agents", [("all", agents)])]
    groups = []
    for key, values in breakdowns:
        for value, group in values:
            active = [a for a in group if a.agent_id in by_agent] or group
            pick = rng.choice(len(active), size=min(per, len(active)), replace=False)
            chosen = sorted((active[i] for i in pick), key=lambda a: a.agent_id)
            shown = [_transcript(a, by_agent.get(a.agent_id, []), qids) for a in chosen]
            groups.append(TranscriptGroup(key, value, len(group), shown))
    return groups


def charts(forecast: Forecast) -> dict[str, str]:
    """Every chart of the report as a data URI, keyed by the element id it is shown under."""
    out: dict[str, str] = {}
    steps = forecast.steps
    for q in forecast.questions:
        if q.series and any(p.value is not None for s in q.series for p in s.points):
            label = "share of agents" if q.percent else "mean answer"
            scale = getattr(q.question, "scale", None)  # likert: show the whole scale
            ylim = (0.8, scale + 0.2) if q.type == "likert" and scale else None
            out[f"plot-{q.id}"] = plots.time_series(
                steps, q.series, percent=q.percent, ylabel=label, ylim=ylim
            )
        if q.ssr is not None and q.ssr.n:
            scale = [str(i + 1) for i in range(len(q.ssr.ssr))]
            bars = {"SSR (reactions)": list(q.ssr.ssr), "direct answers": list(q.ssr.direct)}
            out[f"plot-ssr-{q.id}"] = plots.grouped_bars(
                scale, bars, percent=True, ylabel="share", xlabel="scale point", width=4.9
            )
    first_choice = next((q for q in forecast.questions if q.type == "choice"), None)
    if first_choice is not None:
        for seg in forecast.segments:
            values = [g.value for g in seg.groups]
            estimates = {o: [g.estimates[first_choice.id][o] for g in seg.groups]
                         for o in first_choice.final}  # fmt: skip
            if all(e.value is None for row in estimates.values() for e in row):
                continue
            out[f"plot-segment-{seg.key}"] = plots.grouped_bars(
                values,
                {o: [e.value for e in row] for o, row in estimates.items()},
                intervals={o: [(e.low, e.high) for e in row] for o, row in estimates.items()},
                percent=True,
                ylabel=f"{first_choice.id}: share",
                xlabel=seg.key,
            )
    return out


_last: dict[tuple[Any, ...], Forecast] = {}


def forecast_of(db: RunDatabase, run: RunRow) -> Forecast:
    """The run's forecast, reused while the run is unchanged (the CLI reports, then prints)."""
    key = (db.target, run.id, run.updated, run.last_step, run.status)
    if key not in _last:
        _last.clear()
        _last[key] = build_forecast(db, run.id)
    return _last[key]


def render_report(env: jinja2.Environment, db: RunDatabase, run: RunRow, seed: int = 0) -> str:
    """The report page of a forecast run as an HTML string."""
    forecast = forecast_of(db, run)
    usage = forecast.usage
    reach = recorded_reach(forecast.scenario, db.messages(run.id), forecast.n_agents)
    return env.get_template("report.html.j2").render(
        f=forecast,
        charts=charts(forecast),
        transcripts=transcripts(db, forecast, seed),
        resolutions=resolved(db, run),
        usage=usage,
        usage_errors=dict(usage.get("errors") or {}),
        cost=cost_figures(run.usage, run.estimate),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        caveat=embedded_model_caveat(forecast.backend, forecast.model),
        reach=reach,
        coverage=_coverage_lines(forecast, reach),
        small_n=SMALL_N,
    )


def _coverage_lines(forecast: Forecast, reach: list[EventReach]) -> list[str]:
    """The run's targets that reached nobody and segments where no agent has a value."""
    lines = [
        f"{r.label}: reached no agent"
        for r in reach
        if r.reached == 0 and r.event.channel == "targeted" and r.event.step in forecast.steps
    ]
    for seg in forecast.segments:
        if seg.key != "community" and [g.value for g in seg.groups] == ["(unknown)"]:
            lines.append(f"segment {seg.key}: no agent has this attribute; all are '(unknown)'")
    return lines


def print_summary(db: RunDatabase, run: RunRow, console: Console) -> None:
    """The key figures with their intervals, and the usage."""
    forecast = forecast_of(db, run)
    done = len(forecast.steps)
    console.print(
        f"[bold]{forecast.name}[/] {forecast.run_id}: {forecast.status}, "
        f"{done}/{forecast.steps_total} steps, seed {forecast.seed}, "
        f"{forecast.backend}:{forecast.model}",
        highlight=False,
    )
    console.print(f"answer mode: {forecast.answer_mode}", highlight=False)
    caveat = embedded_model_caveat(forecast.backend, forecast.model)
    if caveat:
        console.print(f"[bold yellow]caveat:[/] {caveat}", highlight=False, soft_wrap=True)
    if forecast.n_answered == 0:
        why = "every interaction failed" if forecast.n_interactions else "no interactions yet"
        console.print(f"[yellow]No answers: {why}.[/]")
    reach = recorded_reach(forecast.scenario, db.messages(run.id), forecast.n_agents)
    for line in _coverage_lines(forecast, reach):
        console.print(f"[yellow]warning:[/] {line}", highlight=False, soft_wrap=True)
    table = Table(title="key figures", title_justify="left")
    table.add_column("figure", justify="left")
    for column in ("value", "95% CI", "n"):
        table.add_column(column, justify="right")
    for kf in forecast.key_figures:
        n = str(kf.estimate.n) if kf.kind in ("share", "mean") else ""
        if kf.kind in ("share", "mean") and kf.estimate.note:
            n = f"{n} ({kf.estimate.note})"
        table.add_row(kf.label, kf.text, kf.interval, n)
    console.print(table)
    console.print(
        "events: " + "; ".join(f"{r.label} reached {r.reached}" for r in reach),
        highlight=False,
        soft_wrap=True,
    )
    if forecast.weighting is not None:
        console.print(_match_table(forecast.weighting))
    outcomes = resolved(db, run)
    if outcomes:
        console.print(scores_table(outcomes, "resolved: the forecast against the real outcome"))
    usage = forecast.usage
    errors = ", ".join(f"{k} {v}" for k, v in sorted((usage.get("errors") or {}).items()))
    console.print(
        f"usage: {usage.get('calls', 0):,} calls, {usage.get('cache_hits', 0):,} cache hits, "
        f"{usage.get('total_tokens', 0):,} tokens, mean latency "
        f"{usage.get('mean_latency_s', 0.0):.2f}s, {usage.get('retries', 0):,} retries, "
        f"failed requests: {errors or 'none'}",
        highlight=False,
    )
    for line in endpoint_lines(usage):
        console.print(f"  {line}", highlight=False)
    print_cost(console, run.usage, run.estimate)


def _match_table(weighting: WeightSummary) -> Table:
    """The raking targets beside the shares the weighted agents reach."""
    table = Table(
        title=f"population matched: effective sample size {weighting.effective_n:.1f} "
        f"of {weighting.n} agents (Kish)",
        title_justify="left",
    )
    table.add_column("attribute")
    table.add_column("value")
    for column in ("target", "achieved", "unweighted"):
        table.add_column(column, justify="right")
    for margin in weighting.margins:
        for value, target in margin.targets.items():
            shares = (target, margin.achieved[value], margin.unweighted[value])
            table.add_row(margin.key, value, *(f"{100 * x:.1f}%" for x in shares))
    return table
