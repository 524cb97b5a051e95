"""How full a typical answer is: the empirical part of the estimate.

A structured answer's length is bounded by its schema (``maxLength``, ``maxItems``), but a
model rarely writes to the bound. Each mode says, per answer field, how much of the bound a
typical answer uses and how often a string is left empty or a flag is set
(``Mode.estimate`` in :mod:`sandbox.modes`); the figures come from runs on the embedded model
and are documented where each mode defines them. Kept free of heavy imports: the mode
registry imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

UNBOUNDED_CHARS = 200
"""The length taken as a string's bound when its schema gives none."""


@dataclass(frozen=True, slots=True)
class FieldFill:
    """A typical answer's value of one field.

    Attributes:
        fill: Share of the string's ``maxLength`` (or of :data:`UNBOUNDED_CHARS`) it uses.
        empty: Chance the string is left empty (e.g. no post to share).
        true: Chance a boolean is true (e.g. a speaker ending the conversation).
        items: Items of a list, within its ``minItems``/``maxItems``.
    """

    fill: float = 0.5
    empty: float = 0.0
    true: float = 0.0
    items: int = 2


@dataclass(frozen=True, slots=True)
class AnswerFill:
    """Typical answers of one mode on one model: per field name, else ``default``.

    Attributes:
        fields: Per answer field name.
        default: Any other field.
        assumptions: The scenario's consequences of these answers worth stating beside the
            estimate (e.g. how long NPC conversations last), from the effective scenario.
        per_agent: The mode's calls grow with its agents (each asks when active), so a big
            population is estimated from a sample of agents (:mod:`sandbox.estimate.sample`).
    """

    fields: Mapping[str, FieldFill] = field(default_factory=dict)
    default: FieldFill = FieldFill()
    assumptions: Callable[[Any, AnswerFill], list[str]] | None = None
    per_agent: bool = False

    def stated(self, scenario: Any) -> list[str]:
        """What these answers assume of a run of ``scenario``, one sentence each."""
        return self.assumptions(scenario, self) if self.assumptions else []

    def of(self, name: str) -> FieldFill:
        return self.fields.get(name, self.default)
