"""The report of an NPC-world run: NPCs, relationships, conversations and per-step figures."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml
from jinja2 import Environment
from rich.console import Console
from rich.table import Table

from personahub.llm.meter import endpoint_lines
from sandbox.estimate.compare import cost_figures, print_cost
from sandbox.rundb import PLAYER_ID, RunDatabase, RunRow


@dataclass
class NPCReport:
    """Everything the NPC report shows, read from the run database."""

    run_id: str
    name: str
    status: str
    seed: int
    backend: str
    model: str
    steps_total: int
    steps_done: int
    world: dict[str, Any]
    npcs: list[dict[str, Any]]
    relations: list[dict[str, Any]]
    conversations: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    usage: dict[str, Any]

    @property
    def lines(self) -> int:
        return sum(len(c["lines"]) for c in self.conversations)

    @property
    def failed_turns(self) -> int:
        return sum(1 for c in self.conversations for line in c["lines"] if line["error"])


def build_npc_report(db: RunDatabase, run: RunRow) -> NPCReport:
    """Read an NPC-world run into an :class:`NPCReport`."""
    scenario = yaml.safe_load(run.scenario_yaml) or {}
    player = (scenario.get("player") or {}).get("name", "the player")
    agents = db.agents(run.id)
    names = {a.agent_id: str((a.profile or {}).get("name") or f"NPC {a.agent_id}") for a in agents}
    names[PLAYER_ID] = player
    npcs = [
        {
            "name": names[a.agent_id],
            "role": (a.profile or {}).get("role", ""),
            "goals": (a.profile or {}).get("goals", []),
            "style": (a.profile or {}).get("speaking_style", ""),
            "persona": a.persona,
            "generated": (a.profile or {}).get("generated", True),
            "error": (a.profile or {}).get("error", ""),
        }
        for a in agents
    ]
    relations = []
    for agent_id, (_step, state) in db.states(run.id).items():
        for other, rel in (state.get("relations") or {}).items():
            relations.append(
                {
                    "src": names.get(agent_id, str(agent_id)),
                    "dst": names.get(int(other), other),
                    "attitude": rel.get("attitude", 0.0),
                    "strength": rel.get("strength", 0.0),
                    "talks": rel.get("talks", 0),
                }
            )
    relations.sort(key=lambda r: (-abs(r["attitude"]), r["src"], r["dst"]))
    grouped: dict[int, list[Any]] = defaultdict(list)
    for turn in db.dialogue_turns(run.id):
        grouped[turn.conversation].append(turn)
    conversations = []
    for number in sorted(grouped):
        turns = grouped[number]
        first = turns[0]
        conversations.append(
            {
                "step": first.step,
                "topic": first.topic,
                "names": [names.get(first.speaker, "?"), names.get(first.listener, "?")],
                "failed": any(t.error_kind for t in turns),
                "lines": [
                    {"name": names.get(t.speaker, "?"), "text": t.content, "error": t.error_kind}
                    for t in turns
                ],
            }
        )
    steps = [row.metrics for row in db.step_metrics(run.id)]
    return NPCReport(
        run_id=run.id,
        name=run.name,
        status=run.status,
        seed=run.seed,
        backend=run.backend,
        model=run.model,
        steps_total=run.steps_total,
        steps_done=run.last_step + 1,
        world=scenario.get("world") or {"name": "?", "setting": ""},
        npcs=npcs,
        relations=relations,
        conversations=conversations,
        steps=steps,
        usage=dict(run.usage or {}),
    )


def render_report(env: Environment, db: RunDatabase, run: RunRow) -> str:
    """The report page of an NPC-world run as an HTML string."""
    return env.get_template("npc_report.html.j2").render(
        r=build_npc_report(db, run),
        cost=cost_figures(run.usage, run.estimate),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def print_summary(db: RunDatabase, run: RunRow, console: Console) -> None:
    """Key figures of an NPC-world run, and its warmest and coldest relationships."""
    report = build_npc_report(db, run)
    console.print(
        f"[bold]{report.name}[/] {report.run_id}: {report.status}, "
        f"{report.steps_done}/{report.steps_total} steps, seed {report.seed}, "
        f"{report.backend}:{report.model}",
        highlight=False,
    )
    table = Table(show_header=False)
    table.add_column("")
    table.add_column("", justify="right")
    table.add_row("NPCs", str(len(report.npcs)))
    table.add_row("fallback profiles", str(sum(not n["generated"] for n in report.npcs)))
    table.add_row("conversations", str(len(report.conversations)))
    table.add_row("lines", str(report.lines))
    table.add_row("failed turns", str(report.failed_turns))
    table.add_row("LLM calls", f"{report.usage.get('calls', 0):,}")
    console.print(table)
    for line in endpoint_lines(report.usage):
        console.print(f"  {line}", highlight=False, soft_wrap=True)
    print_cost(console, run.usage, run.estimate)
    for rel in report.relations[:3]:
        console.print(
            f"  {rel['src']} -> {rel['dst']}: attitude {rel['attitude']:+.2f}, "
            f"strength {rel['strength']:.2f}",
            highlight=False,
        )
