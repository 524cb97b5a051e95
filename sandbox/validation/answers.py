"""The simulated answer distribution of every agent of a calibration run.

The one place that reads a run's answers for scoring. Runs with an answer mode other than
``sample`` carry a distribution per agent, read by
``sandbox.forecast.distributions.final_distributions`` where that module exists; without it,
every run is a ``sample`` run and :func:`_sampled` builds the same shape from the recorded
answers.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from sandbox.rundb import RunDatabase

Distributions = dict[int, dict[str, dict[str, float]]]
"""Agent id -> question id -> option -> probability."""


def respondent_distributions(database: str | Path, run_id: str) -> Distributions:
    """Each agent's final answer distribution per question (agents that never answered a
    question have no entry for it)."""
    try:
        module = importlib.import_module("sandbox.forecast.distributions")
    except ImportError:
        return _sampled(database, run_id)
    result: Distributions = module.final_distributions(str(database), run_id)
    return result


def _sampled(database: str | Path, run_id: str) -> Distributions:
    """``sample`` mode: one-hot on each agent's last valid answer to each question."""
    db = RunDatabase(database, must_exist=True)
    try:
        out: Distributions = {}
        for row in sorted(db.interactions(run_id), key=lambda r: r.step):
            for qid, answer in (row.parsed or {}).items():
                if qid not in ("reaction", "post") and isinstance(answer, str):
                    out.setdefault(row.agent_id, {})[qid] = {answer: 1.0}
        return out
    finally:
        db.close()
