"""The experiment pages' data: an experiment folder as one line of the runs list, and its arms
side by side (per arm: its runs with seed, status, progress and key figures).

An experiment (``sandbox experiment``) keeps every arm x seed run in one database with a table
``experiment_runs`` naming each run's arm; :class:`~sandbox.serve.source.RunSource` tags the
listed runs with that row, and these functions group them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from sandbox.rundb import RunRow
from sandbox.serve.source import Listed, RunReader
from sandbox.serve.views import run_summary

Figures = Callable[[RunReader, RunRow], list[dict[str, Any]]]


def _statuses(runs: list[RunRow]) -> str:
    """``"4 completed, 2 running"``: how many runs are in each status."""
    counts = Counter(run.status for run in runs)
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def experiments_list(listing: list[Listed]) -> list[dict[str, Any]]:
    """One line per experiment: its id, arms (plan order), run count and status summary."""
    members: dict[str, list[Listed]] = {}
    for item in listing:
        if item.run is not None and item.experiment is not None:
            members.setdefault(item.experiment.experiment, []).append(item)
    lines = []
    for experiment_id, items in members.items():
        items.sort(key=lambda i: i.experiment.position if i.experiment else 0)
        runs = [i.run for i in items if i.run is not None]
        arms = list(dict.fromkeys(i.experiment.arm for i in items if i.experiment))
        lines.append(
            {
                "id": experiment_id,
                "arms": arms,
                "runs": len(runs),
                "status": _statuses(runs),
                "started": f"{min(r.created for r in runs):%Y-%m-%d %H:%M:%S}",
            }
        )
    return lines


def experiment_page(reader: RunReader, figures: Figures) -> dict[str, Any]:
    """The arms of the experiment in ``reader``'s database, side by side.

    Each arm (at each sweep point) lists its runs by seed with their summary and key figures
    (``figures``: the run page's, so they are computed and cached alike).
    """
    # Imported here: the experiment report pulls in the plotting stack, which the other
    # pages never need. Its grouping is the one the experiment report uses, labels included.
    from sandbox.experiment.report import groups_of

    groups = groups_of(reader)
    arms = []
    every: list[RunRow] = []
    for group in groups:
        runs = []
        for seed, (_db, run_id) in enumerate(group.runs):
            run = reader.run(run_id)
            if run is None:
                continue
            every.append(run)
            runs.append({"seed": seed, "run": run_summary(run), "figures": figures(reader, run)})
        # The condition the others are compared with (the control arm, or the first point).
        reference = group.reference is None and len(groups) > 1
        arms.append({"label": group.label, "reference": reference, "runs": runs})
    return {"arms": arms, "runs": len(every), "status": _statuses(every)}
