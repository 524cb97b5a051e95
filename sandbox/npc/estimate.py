"""NPC-world mode's typical answers, for the estimate (``Mode.estimate``).

Two kinds of request: one NPC profile per persona (name, role, backstory up to 400
characters, 1-3 goals, speaking style, how they treat players), then dialogue lines (``say``
up to 240 characters, a feeling, and whether the speaker ends the conversation). Figures for
the embedded model are measured on ``scenarios/harbour_town.yaml``
(benchmarks/estimate_accuracy.py).

How long a conversation lasts decides most of a run's tokens: every line is a call, and
each call's prompt holds the lines said before it. A conversation ends (``sandbox.npc.dialogue``)
when a speaker sets ``end`` (honoured only once both have spoken), when it reaches the
scenario's ``dialogue.turns``, when a line repeats an earlier one, or on a failed turn. The
dry run plays these rules out with ``end`` drawn at the table's chance per line;
:func:`expected_lines` gives the mean length that implies, stated beside the estimate.
"""

from __future__ import annotations

from typing import Any

from sandbox.estimate.fill import AnswerFill, FieldFill


def expected_lines(turns: int, end: float) -> float:
    """Mean lines of a conversation between two NPCs of at most ``turns`` lines when each
    line ends it with chance ``end`` once both have spoken (repeats and failures aside)."""
    # Lines 1 and 2 are always said; line k > 2 only if none of lines 2..k-1 ended it.
    return min(turns, 2) + sum((1 - end) ** (k - 2) for k in range(3, turns + 1))


def conversation_length(scenario: Any, fill: AnswerFill) -> list[str]:
    """The estimate's assumption about NPC conversations in ``scenario``, in words."""
    end, turns = fill.of("end").true, scenario.dialogue.turns
    return [
        f"an NPC ends a conversation with chance {end:.0%} per line once both have spoken: "
        f"{expected_lines(turns, end):.1f} lines on average (at most {turns})"
    ]


EMBEDDED = AnswerFill(
    fields={
        "say": FieldFill(fill=0.3),
        "end": FieldFill(true=0.2),
        "backstory": FieldFill(fill=0.3),
        "goals": FieldFill(fill=0.3, items=2),
    },
    default=FieldFill(fill=0.35),
    assumptions=conversation_length,
)
SERVED = AnswerFill(
    fields={
        "say": FieldFill(fill=0.5),
        "end": FieldFill(true=0.2),
        "backstory": FieldFill(fill=0.6),
        "goals": FieldFill(fill=0.6, items=2),
    },
    default=FieldFill(fill=0.6),
    assumptions=conversation_length,
)


def typical_answers(backend: str) -> AnswerFill:
    """The typical NPC-world answers on ``backend`` (``local``: the embedded model)."""
    return EMBEDDED if backend == "local" else SERVED
