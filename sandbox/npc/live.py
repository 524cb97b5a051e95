"""NPC worlds' live figures for ``sandbox serve``: conversations and turns so far."""

from __future__ import annotations

from typing import Any

from sandbox.rundb import RunDatabase, RunRow


def live_figures(database: RunDatabase, run: RunRow) -> dict[str, Any]:
    """Counts of conversations, turns and failed turns; NPC worlds have no answers to share
    out, so the graph is coloured by community."""
    turns = database.dialogue_turns(run.id)
    counts = [
        ("kf-conversations", "conversations", len({t.conversation for t in turns})),
        ("kf-turns", "turns", len(turns)),
        ("kf-failed-turns", "failed turns", sum(t.error_kind is not None for t in turns)),
    ]
    return {
        "figures": [
            {"id": fid, "label": label, "text": f"{n:,}", "interval": ""}
            for fid, label, n in counts
        ],
        "shares": [],
        "colour_by": None,
        "categories": [],
        "answers": {},
    }
