"""What the pages show, as plain data read from a run database (read-only).

The run page's snapshot (:func:`live_snapshot`) changes only when the run commits a step, so
it is computed once per committed step and status and then served from memory, however many
pages poll it. The graph's layout is computed once per run.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from sandbox.modes import mode_of_run
from sandbox.rundb import (
    AgentStateRow,
    DialogueTurnRow,
    EdgeRow,
    InteractionRow,
    InterviewRow,
    RunRow,
)
from sandbox.serve.graph import GraphLayout, coloured, layout
from sandbox.serve.source import Listed, RunReader

FEED = 30
FAILURES = 20
# How long after a run completes its report may still come: `sandbox run` writes it right
# after the last step, but a first load of the report's models can take minutes.
REPORT_WAIT = timedelta(minutes=10)


def run_summary(run: RunRow) -> dict[str, Any]:
    """A run's line in the runs list and the head of its page."""
    usage = run.usage or {}
    done = run.last_step + 1
    return {
        "id": run.id,
        "name": run.name,
        "mode": mode_of_run(run).name,
        "status": run.status,
        "step": done,
        "steps_total": run.steps_total,
        "progress": f"{done}/{run.steps_total}",
        "model": f"{run.backend}:{run.model}",
        "calls": usage.get("calls", 0),
        "tokens": usage.get("total_tokens", 0),
        "cost": usage.get("cost", 0.0),
        "started": f"{run.created:%Y-%m-%d %H:%M:%S}",
        "updated": f"{run.updated:%Y-%m-%d %H:%M:%S}",
    }


def report_pending(run: RunRow, has_report: bool, now: datetime | None = None) -> bool:
    """Whether a completed run's report can still come: it has none yet and completed less
    than :data:`REPORT_WAIT` ago. Past that, nothing more will change on its page."""
    if run.status != "completed" or has_report:
        return False
    # SQLite hands timestamps back without their zone; they are stored in UTC.
    updated = run.updated if run.updated.tzinfo else run.updated.replace(tzinfo=UTC)
    return (now or datetime.now(UTC)) - updated < REPORT_WAIT


def runs_list(listing: list[Listed]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The runs (summaries) and the databases that could not be read (target, problem).
    An experiment's runs are left out: the list shows the experiment as one line instead."""
    runs = [
        run_summary(item.run)
        for item in listing
        if item.run is not None and item.experiment is None
    ]
    problems = [
        {"target": item.target, "problem": item.problem or ""}
        for item in listing
        if item.run is None
    ]
    return runs, problems


def _feed(reader: RunReader, run_id: str) -> list[dict[str, Any]]:
    """The latest reactions, posts and conversation lines, newest first."""
    with Session(reader.engine) as session:
        rows = session.execute(
            select(
                col(InteractionRow.id),
                col(InteractionRow.step),
                col(InteractionRow.agent_id),
                col(InteractionRow.reaction),
                col(InteractionRow.post),
            )
            .where(
                col(InteractionRow.run_id) == run_id,
                col(InteractionRow.error_kind).is_(None),
                (col(InteractionRow.reaction) != "") | (col(InteractionRow.post) != ""),
            )
            .order_by(col(InteractionRow.id).desc())
            .limit(FEED)
        ).all()
        turns = session.execute(
            select(DialogueTurnRow)
            .where(col(DialogueTurnRow.run_id) == run_id, col(DialogueTurnRow.content) != "")
            .order_by(col(DialogueTurnRow.id).desc())
            .limit(FEED)
        ).scalars()
        feed = []
        for _id, step, agent, reaction, post in rows:
            if post:
                feed.append({"step": step, "agent": agent, "kind": "post", "text": post})
            if reaction:
                feed.append({"step": step, "agent": agent, "kind": "reaction", "text": reaction})
        feed += [
            {"step": t.step, "agent": t.speaker, "kind": "said", "text": t.content} for t in turns
        ]
    return feed[:FEED]


def _failures(reader: RunReader, run_id: str) -> dict[str, Any]:
    """Failed calls: counts per kind, and the latest ones with their causes."""
    with Session(reader.engine) as session:
        by_kind: Counter[str] = Counter()
        latest: list[dict[str, Any]] = []
        for table in (InteractionRow, DialogueTurnRow):
            failed = col(table.error_kind).is_not(None)
            where = (col(table.run_id) == run_id, failed)
            for kind, n in session.execute(
                select(col(table.error_kind), func.count())
                .where(*where)
                .group_by(col(table.error_kind))
            ).all():
                by_kind[str(kind)] += int(n)
            agent = InteractionRow.agent_id if table is InteractionRow else DialogueTurnRow.speaker
            latest += [
                {"step": step, "agent": who, "kind": kind, "message": message or ""}
                for step, who, kind, message in session.execute(
                    select(
                        col(table.step), col(agent), col(table.error_kind), col(table.error_message)
                    )
                    .where(*where)
                    .order_by(col(table.id).desc())
                    .limit(FAILURES)
                ).all()
            ]
    latest.sort(key=lambda f: -f["step"])
    return {"total": sum(by_kind.values()), "by_kind": dict(by_kind), "latest": latest[:FAILURES]}


class LiveViews:
    """The run pages' snapshots and graph layouts, cached (see the module docstring)."""

    def __init__(self) -> None:
        self._snapshots: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
        self._layouts: dict[str, GraphLayout] = {}

    def snapshot(self, reader: RunReader, run: RunRow) -> dict[str, Any]:
        """Everything the run page shows that changes while the run goes."""
        version = (run.last_step, run.status, run.updated)
        cached = self._snapshots.get(run.id)
        if cached is not None and cached[0] == version:
            return cached[1]
        if run.id not in self._layouts:
            self._layouts[run.id] = layout(reader.agents(run.id), reader.edges(run.id), run.seed)
        figures = mode_of_run(run).live(reader, run)
        snapshot = {
            "run": run_summary(run),
            "figures": figures["figures"],
            "shares": figures["shares"],
            "colour_by": figures["colour_by"],
            "graph": coloured(self._layouts[run.id], figures["answers"], figures["categories"]),
            "feed": _feed(reader, run.id),
            "failures": _failures(reader, run.id),
        }
        self._snapshots[run.id] = (version, snapshot)
        return snapshot

    def figures(self, reader: RunReader, run: RunRow) -> list[dict[str, Any]]:
        """The run's key figures (those of its cached snapshot)."""
        figures: list[dict[str, Any]] = self.snapshot(reader, run)["figures"]
        return figures


def agent_page(reader: RunReader, run: RunRow, agent_id: int) -> dict[str, Any] | None:
    """Everything about one agent: persona, attributes, neighbours, state, answers over time,
    every interaction (prompt and reply), its conversation lines and its interviews."""
    agent = next((a for a in reader.agents(run.id) if a.agent_id == agent_id), None)
    if agent is None:
        return None
    with Session(reader.engine) as session:
        edges = session.execute(
            select(EdgeRow).where(
                col(EdgeRow.run_id) == run.id,
                (col(EdgeRow.src) == agent_id) | (col(EdgeRow.dst) == agent_id),
            )
        ).scalars()
        neighbours = sorted(
            (e.dst if e.src == agent_id else e.src, e.relation, e.strength) for e in edges
        )
        state = session.get(AgentStateRow, (run.id, agent_id))
        turns = list(
            session.execute(
                select(DialogueTurnRow)
                .where(
                    col(DialogueTurnRow.run_id) == run.id,
                    (col(DialogueTurnRow.speaker) == agent_id)
                    | (col(DialogueTurnRow.listener) == agent_id),
                )
                .order_by(col(DialogueTurnRow.conversation), col(DialogueTurnRow.turn))
            ).scalars()
        )
        interviews = list(
            session.execute(
                select(InterviewRow)
                .where(col(InterviewRow.run_id) == run.id, col(InterviewRow.agent_id) == agent_id)
                .order_by(col(InterviewRow.id))
            ).scalars()
        )
    interactions = reader.agent_interactions(run.id, agent_id)
    questions = sorted(
        {k for r in interactions if isinstance(r.parsed, dict) for k in r.parsed}
        - {"reaction", "post"}
    )
    answers = [
        {"step": r.step, "values": [(r.parsed or {}).get(q, "") for q in questions]}
        for r in interactions
        if r.error_kind is None and isinstance(r.parsed, dict)
    ]
    memory = (state.state.get("memory") if state else None) or []
    return {
        "agent": agent,
        "neighbours": neighbours,
        "state_step": state.step if state else None,
        "memory": [m if isinstance(m, dict) else {"content": str(m)} for m in memory],
        "current": (state.state.get("answers") if state else None) or {},
        "questions": questions,
        "answers": answers,
        "interactions": interactions,
        "turns": turns,
        "interviews": interviews,
    }
