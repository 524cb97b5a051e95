"""Forecast mode's typical answers, for the estimate (``Mode.estimate``).

An answer is a reaction (bounded at 240 characters), the question answers, and a post
(bounded at 160) that may be empty. Figures for the embedded model (SmolLM2-135M under its
grammar) are measured on the shipped scenarios (benchmarks/estimate_accuracy.py); a served
instruction model writes closer to the bounds and shares a post almost every time. Every
active agent asks once a step, so a big population's estimate is made on a sample of agents
(``per_agent``). Archetype mode shares these answers; it builds its own agents, which the
estimate never samples.
"""

from __future__ import annotations

from sandbox.estimate.fill import AnswerFill, FieldFill

EMBEDDED = AnswerFill(
    fields={"reaction": FieldFill(fill=0.35), "post": FieldFill(fill=0.4, empty=0.2)},
    default=FieldFill(fill=0.3),
    per_agent=True,
)
SERVED = AnswerFill(
    fields={"reaction": FieldFill(fill=0.7), "post": FieldFill(fill=0.8, empty=0.05)},
    default=FieldFill(fill=0.6),
    per_agent=True,
)


def typical_answers(backend: str) -> AnswerFill:
    """The typical forecast answer on ``backend`` (``local``: the embedded model)."""
    return EMBEDDED if backend == "local" else SERVED
