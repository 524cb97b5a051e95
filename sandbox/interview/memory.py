"""What an agent saw and said up to a step, read back from the run database.

An interview speaks from the agent's record, not from a live model: the observations and
answers of its interactions (forecast runs) and its conversation turns (NPC worlds), as of the
end of the chosen step. Reading both tables, whichever the run filled, keeps this free of any
branching on the run's mode.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlmodel import Session, col

from sandbox.rundb import AgentRow, DialogueTurnRow, InteractionRow, RunDatabase

MEMORY_ITEMS = 30
"""The latest items an interview prompt shows; older ones are left out."""
ITEM_CHARS = 600
PERSONA_CHARS = 4000
"""Persona text past this is cut from interview prompts (persona files can hold anything)."""
SKIPPED = frozenset({"reaction", "post"})


@dataclass(frozen=True, slots=True)
class MemoryItem:
    """One thing the agent saw or said: ``what`` says which (``"you said"``)."""

    step: int
    what: str
    text: str


def _cut(text: str, limit: int = ITEM_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _interaction_items(row: InteractionRow) -> list[MemoryItem]:
    items = [
        MemoryItem(row.step, f"you heard from {o.get('source') or 'someone'}", _cut(o["content"]))
        for o in row.observations or []
        if o.get("content")
    ]
    parsed = row.parsed if row.error_kind is None and isinstance(row.parsed, dict) else None
    if parsed is None:
        return items
    if row.reaction:
        items.append(MemoryItem(row.step, "you said", _cut(row.reaction)))
    answers = ", ".join(f"{k} = {v}" for k, v in parsed.items() if k not in SKIPPED)
    if answers:
        items.append(MemoryItem(row.step, "you answered", _cut(answers)))
    if row.post:
        items.append(MemoryItem(row.step, "you told people you know", _cut(row.post)))
    return items


def _turn_item(agent_id: int, turn: DialogueTurnRow) -> MemoryItem:
    what = "you said" if turn.speaker == agent_id else "someone said to you"
    return MemoryItem(turn.step, what, _cut(turn.content))


def agent_memory(database: RunDatabase, run_id: str, agent_id: int, step: int) -> list[MemoryItem]:
    """The agent's latest :data:`MEMORY_ITEMS` items up to and including ``step``."""
    with Session(database.engine) as session:
        rows = session.execute(
            select(InteractionRow)
            .where(
                col(InteractionRow.run_id) == run_id,
                col(InteractionRow.agent_id) == agent_id,
                col(InteractionRow.step) <= step,
            )
            .order_by(col(InteractionRow.step), col(InteractionRow.id))
        ).scalars()
        items = [item for row in rows for item in _interaction_items(row)]
        turns = session.execute(
            select(DialogueTurnRow)
            .where(
                col(DialogueTurnRow.run_id) == run_id,
                col(DialogueTurnRow.step) <= step,
                or_(
                    col(DialogueTurnRow.speaker) == agent_id,
                    col(DialogueTurnRow.listener) == agent_id,
                ),
                col(DialogueTurnRow.error_kind).is_(None),
            )
            .order_by(col(DialogueTurnRow.conversation), col(DialogueTurnRow.turn))
        ).scalars()
        items += [_turn_item(agent_id, turn) for turn in turns]
    items.sort(key=lambda item: item.step)  # stable: each table's order within a step stays
    return items[-MEMORY_ITEMS:]


def agent_row(database: RunDatabase, run_id: str, agent_id: int) -> AgentRow | None:
    """One agent of a run, or None."""
    with Session(database.engine) as session:
        return session.get(AgentRow, (run_id, agent_id))


def persona_text(agent: AgentRow) -> str:
    """The persona as interview prompts show it (cut at :data:`PERSONA_CHARS`)."""
    return _cut(agent.persona, PERSONA_CHARS)
