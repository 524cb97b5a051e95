"""Chat samples pulled out of a run database, one per agent reply or NPC conversation side.

* ``agent``: every row of ``interactions`` is a sample: the messages the agent was sent
  (system + user) followed by its raw reply as the assistant turn.
* ``npc``: every conversation in ``dialogue_turns`` gives one sample per NPC that speaks in
  it: the NPC's system prompt, then the turns in order, its own lines as ``assistant`` and
  everyone else's (other NPCs, the scripted player) as ``user``. The player is never a
  sample's assistant.
* ``interview``: every interview (``sandbox interview``, ``sandbox serve``) gives one sample:
  the agent's interview system prompt, then each answered question and reply; every survey
  answer gives one (the survey question, the agent's JSON answer). Interviews are no mode's
  samples: ``all`` adds them after every mode's.

Failed interactions, and every side of a conversation with a failed turn, are still returned
(flagged ``failed``) so that the export can count what it drops.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import groupby
from typing import Any, Literal

from sqlalchemy import select
from sqlmodel import Session, col

from personahub import prompts
from sandbox.rundb import PLAYER_ID, AgentRow, DialogueTurnRow, InterviewRow, RunDatabase

Role = Literal["agent", "npc", "interview", "all"]
ROLES: tuple[Role, ...] = ("agent", "npc", "interview", "all")


@dataclass(slots=True)
class Sample:
    """One training conversation and where it came from.

    Attributes:
        run_id: The run.
        source: ``agent``, ``npc`` or ``interview``.
        agent_id: The agent whose replies are the assistant turns.
        persona_id: That agent's persona id ("" when the agent row is missing).
        step: Step of the interaction, or of the conversation's first turn.
        conversation: Conversation number (None for agent samples).
        messages: ``{"role", "content"}`` dicts, system first when there is one.
        group: Split unit: samples sharing it always land in the same split.
        failed: The error kind that makes this sample unusable, or None.
        scrubbed: Whether scrubbing replaced anything in it.
    """

    run_id: str
    source: Literal["agent", "npc", "interview"]
    agent_id: int
    persona_id: str
    step: int
    conversation: int | None
    messages: list[dict[str, str]]
    group: str
    failed: str | None = None
    scrubbed: bool = False

    @property
    def turns(self) -> int:
        """Non-system messages (what ``--min-turns`` counts)."""
        return sum(m["role"] != "system" for m in self.messages)

    def text(self) -> str:
        """All contents, in order (what dedup compares)."""
        return "\n".join(m["content"] for m in self.messages)


def agent_samples(database: RunDatabase, run_id: str) -> list[Sample]:
    """One sample per recorded interaction, in step then agent order."""
    personas = {a.agent_id: a.persona_id for a in database.agents(run_id)}
    return [
        Sample(
            run_id=run_id,
            source="agent",
            agent_id=row.agent_id,
            persona_id=personas.get(row.agent_id, ""),
            step=row.step,
            conversation=None,
            messages=[
                {"role": str(m.get("role", "")), "content": str(m.get("content") or "")}
                for m in row.messages
            ]
            + [{"role": "assistant", "content": row.raw_response}],
            group=f"agent:{row.id}",
            failed=row.error_kind,
        )
        for row in database.interactions(run_id)
    ]


def npc_samples(database: RunDatabase, run_id: str) -> list[Sample]:
    """One sample per (conversation, NPC that speaks in it), in conversation order."""
    agents = {a.agent_id: a for a in database.agents(run_id)}
    samples: list[Sample] = []
    for number, group in groupby(database.dialogue_turns(run_id), key=lambda t: t.conversation):
        turns = sorted(group, key=lambda t: t.turn)
        failed = next((t.error_kind for t in turns if t.error_kind), None)
        speakers = dict.fromkeys(t.speaker for t in turns if t.speaker != PLAYER_ID)
        for npc in speakers:
            agent = agents.get(npc)
            samples.append(
                Sample(
                    run_id=run_id,
                    source="npc",
                    agent_id=npc,
                    persona_id=agent.persona_id if agent else "",
                    step=turns[0].step,
                    conversation=number,
                    messages=_npc_messages(npc, turns, agents),
                    group=f"npc:{number}",
                    failed=failed,
                )
            )
    return samples


def collect(database: RunDatabase, run_id: str, role: Role) -> list[Sample]:
    """The samples of ``role`` (``agent``, ``npc`` or ``all``): each mode's whose export role it
    is (:data:`sandbox.modes.MODES`), in registry order (agent samples first)."""
    # Imported here: the registry imports this module, whose readers are the modes' samples.
    from sandbox.modes import MODES

    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} (use {', '.join(ROLES)})")
    samples = [
        sample
        for mode in MODES.values()
        if role in (mode.export_role, "all")
        for sample in mode.samples(database, run_id)
    ]
    if role in ("interview", "all"):
        samples += interview_samples(database, run_id)
    return samples


def interview_samples(database: RunDatabase, run_id: str) -> list[Sample]:
    """One sample per interview, and per survey answer, in the order they were asked."""
    personas = {a.agent_id: a.persona_id for a in database.agents(run_id)}
    with Session(database.engine) as session:
        rows = session.execute(
            select(InterviewRow)
            .where(col(InterviewRow.run_id) == run_id)
            .order_by(col(InterviewRow.id))
        ).scalars()
        by_talk: dict[tuple[str, int], list[InterviewRow]] = {}
        for row in rows:
            by_talk.setdefault((row.session, row.agent_id), []).append(row)
    samples = []
    for (talk, agent_id), turns in by_talk.items():
        answered = [t for t in turns if t.error_kind is None]
        # The last answered turn's request holds the system prompt and every earlier
        # answered turn (failed ones are never sent along): the whole interview, in order.
        last = answered[-1] if answered else turns[-1]
        messages = [
            {"role": str(m.get("role", "")), "content": str(m.get("content") or "")}
            for m in last.messages
        ] + [{"role": "assistant", "content": last.reply}]
        samples.append(
            Sample(
                run_id=run_id,
                source="interview",
                agent_id=agent_id,
                persona_id=personas.get(agent_id, ""),
                step=last.step,
                conversation=None,
                messages=messages,
                group=f"interview:{talk}:{agent_id}",
                failed=None if answered else turns[-1].error_kind,
            )
        )
    return samples


def system_prompt(agent: AgentRow | None) -> str:
    """What an NPC speaks under: its recorded system prompt, else its persona or profile."""
    if agent is None:
        return ""
    # Rows written before these columns existed hold NULL.
    for text in (agent.system_prompt, agent.persona):
        if text and text.strip():
            return text
    return "\n".join(f"{key}: {value}" for key, value in (agent.profile or {}).items())


def display_name(speaker: int, agents: dict[int, AgentRow]) -> str:
    """How the opening line names a conversation partner."""
    if speaker == PLAYER_ID:
        return "the player"
    profile: dict[str, Any] = (agents[speaker].profile if speaker in agents else None) or {}
    return str(profile.get("name") or "someone")


def _npc_messages(
    npc: int, turns: list[DialogueTurnRow], agents: dict[int, AgentRow]
) -> list[dict[str, str]]:
    """The conversation as ``npc`` sees it, ready for chat training."""
    messages = [{"role": "system", "content": system_prompt(agents.get(npc))}]
    for turn in turns:
        role = "assistant" if turn.speaker == npc else "user"
        if messages[-1]["role"] == role:
            # Two lines in a row from the same side (e.g. two others in a group talk) are one
            # turn: alternating roles are what chat templates expect.
            messages[-1]["content"] += "\n\n" + turn.content
        else:
            messages.append({"role": role, "content": turn.content})
    if not messages[0]["content"]:
        messages.pop(0)
    first = next(i for i, m in enumerate(messages) if m["role"] != "system")
    if messages[first]["role"] == "assistant":
        # The NPC opens: a model only learns a reply when there is something to reply to.
        opener = turns[0]
        partner = opener.listener if opener.listener != npc else _other(npc, turns)
        messages.insert(
            first,
            {
                "role": "user",
                "content": prompts.render(
                    "export_opening",
                    package="sandbox",
                    partner=display_name(partner, agents),
                    topic=opener.topic,
                ),
            },
        )
    while messages[-1]["role"] == "user":
        # Lines after the NPC's last reply teach it nothing.
        messages.pop()
    return messages


def _other(npc: int, turns: Iterable[DialogueTurnRow]) -> int:
    for turn in turns:
        for who in (turn.speaker, turn.listener):
            if who != npc:
                return who
    return PLAYER_ID
