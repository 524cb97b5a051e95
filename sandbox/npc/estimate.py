"""NPC-world mode's typical answers, for the estimate (``Mode.estimate``).

Two kinds of request: one NPC profile per persona (name, role, backstory up to 400
characters, 1-3 goals, speaking style, how they treat players), then dialogue lines (``say``
up to 240 characters, a feeling, and whether the speaker ends the conversation: the chance
of ``end`` sets how many turns a conversation lasts). Figures for the embedded model are
measured on ``scenarios/harbour_town.yaml`` (benchmarks/estimate_accuracy.py).
"""

from __future__ import annotations

from sandbox.estimate.fill import AnswerFill, FieldFill

EMBEDDED = AnswerFill(
    fields={
        "say": FieldFill(fill=0.3),
        "end": FieldFill(true=0.2),
        "backstory": FieldFill(fill=0.3),
        "goals": FieldFill(fill=0.3, items=2),
    },
    default=FieldFill(fill=0.35),
)
SERVED = AnswerFill(
    fields={
        "say": FieldFill(fill=0.5),
        "end": FieldFill(true=0.2),
        "backstory": FieldFill(fill=0.6),
        "goals": FieldFill(fill=0.6, items=2),
    },
    default=FieldFill(fill=0.6),
)


def typical_answers(backend: str) -> AnswerFill:
    """The typical NPC-world answers on ``backend`` (``local``: the embedded model)."""
    return EMBEDDED if backend == "local" else SERVED
