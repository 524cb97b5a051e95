"""Who a scenario's targets and segments reach: nobody must not be a silent answer.

A targeted event selects personas by attributes, and a segment breaks results down by one;
on a population without those attributes (real personas often have none), the event reaches
nobody and every agent falls in "(unknown)". :func:`coverage_warnings` says so in one line
each, before a run (``sandbox validate --population``, ``sandbox run``); :func:`recorded_reach`
counts from a run database how many agents each event reached, for the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sandbox.population import PersonaRecord as Persona
from sandbox.scenario import Event, PersonaSelector, ScenarioBase


@dataclass(frozen=True, slots=True)
class EventReach:
    """How many agents one timeline event reached (or will reach).

    Attributes:
        index: Its position in the scenario's timeline.
        event: The event.
        reached: Agents it reaches.
    """

    index: int
    event: Event
    reached: int

    @property
    def label(self) -> str:
        """``timeline[1] (step 2, targeted)``."""
        return f"timeline[{self.index}] (step {self.event.step}, {self.event.channel})"


def expected_reach(scenario: ScenarioBase, personas: Sequence[Persona]) -> list[EventReach]:
    """How many of ``personas`` each event of ``scenario`` will reach."""
    out = []
    for index, event in enumerate(scenario.timeline):
        if event.channel == "targeted":
            target = event.target
            assert target is not None
            reached = sum(target.matches(p.text, p.attributes) for p in personas)
        elif event.channel == "seeded":
            reached = min(event.k or 0, len(personas))
        else:
            reached = len(personas)
        out.append(EventReach(index, event, reached))
    return out


def coverage_warnings(scenario: ScenarioBase, personas: Sequence[Persona]) -> list[str]:
    """One line per targeted event that reaches none of ``personas`` and per segment that no
    persona has, saying why (which attribute no persona has, or which values none takes)."""
    lines = []
    for reach in expected_reach(scenario, personas):
        if reach.reached == 0 and reach.event.target is not None:
            why = _why_nobody(reach.event.target, personas)
            lines.append(f"{reach.label}: the target matches no persona ({why})")
    for key in scenario.segment_attributes:
        if not any(p.attributes.get(key) is not None for p in personas):
            lines.append(
                f"segments: no persona has the attribute {key!r}; every agent would be "
                "'(unknown)' in that breakdown"
            )
    return lines


def _why_nobody(target: PersonaSelector, personas: Sequence[Persona]) -> str:
    absent = [k for k in target.attributes if not any(k in p.attributes for p in personas)]
    if absent:
        return f"no persona has the attribute {', '.join(map(repr, absent))}"
    if target.attributes:
        wanted = "; ".join(f"{k} in {v!r}" for k, v in target.attributes.items())
        return f"no persona has {wanted} together with the text conditions"
    return "no persona text matches its contains_any/regex"


def recorded_reach(
    scenario: ScenarioBase, messages: Sequence[Any], n_agents: int
) -> list[EventReach]:
    """How many agents each event of ``scenario`` reached in a run, from its recorded
    messages (``kind == "event"``: one row per agent reached, or one row with
    ``dst_agent == -1`` for a broadcast to everyone). Events after the run's last recorded
    step count 0."""
    rows: dict[tuple[int, str, str], set[int]] = {}
    for row in messages:
        if row.kind == "event":
            rows.setdefault((row.step, row.source, row.content), set()).add(row.dst_agent)
    out = []
    for index, event in enumerate(scenario.timeline):
        agents = rows.get((event.step, event.source, event.content), set())
        reached = n_agents if -1 in agents else len(agents)
        out.append(EventReach(index, event, reached))
    return out
