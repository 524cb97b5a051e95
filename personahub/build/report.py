"""What a persona build counts, per stage and overall (:class:`BuildReport`): the numbers
``personahub build`` prints as its summary."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StageReport:
    """Counts of one stage (Text-to-Persona, or one hop).

    Attributes:
        inputs: Texts (Text-to-Persona) or parent personas (hops) sent to the model.
        requests: LLM requests.
        failed: Requests that finally failed.
        held_back: Answers set aside because another angle of the same text failed (the
            text is retried by the next run, from the cache).
        generated: Personas the model produced.
        filtered: Dropped by each quality reason.
        deduped: Dropped by each dedup stage.
        known: Exact duplicates of stored personas (normally caught by dedup first).
        stored: Personas added to the store.
        relevance: Relevance (cosine to the source text) of each persona that passed the
            quality filters (Text-to-Persona only).
        edges: Edges added (parent -> child, and parent -> known near-duplicate).
        linked: Of those, edges to an already stored near-duplicate.
    """

    inputs: int = 0
    requests: int = 0
    failed: int = 0
    held_back: int = 0
    generated: int = 0
    filtered: Counter[str] = field(default_factory=Counter)
    deduped: Counter[str] = field(default_factory=Counter)
    known: int = 0
    stored: int = 0
    relevance: list[float] = field(default_factory=list)
    edges: int = 0
    linked: int = 0


@dataclass
class BuildReport:
    """Everything the summary shows.

    Attributes:
        texts_read: Input texts read (after ``limit``).
        texts_skipped: Already in the store (same content hash) or repeated in the input.
        texts_malformed: Rows the reader skipped (bad JSON, empty text, ...).
        texts_failed: Texts with a failed request, left for the next run.
        stages: Per stage, in order: ``text-to-persona``, ``hop 1``, ...
        errors: Failed requests by error kind.
        first_error: One failure message, to show the user what went wrong.
        stopped: Why the build stopped early, or None.
        seeded: Stored personas the dedup index was seeded with.
        llm: The gateway's usage snapshot.
        store: The store's stats at the end.
    """

    texts_read: int = 0
    texts_skipped: int = 0
    texts_malformed: int = 0
    texts_failed: int = 0
    stages: dict[str, StageReport] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    first_error: str | None = None
    stopped: str | None = None
    seeded: int = 0
    llm: dict[str, Any] = field(default_factory=dict)
    store: dict[str, Any] = field(default_factory=dict)

    def total(self, name: str) -> int:
        """Sum of an integer StageReport field over all stages."""
        return sum(getattr(s, name) for s in self.stages.values())
