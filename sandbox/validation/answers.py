"""The simulated answer distribution of every agent of a calibration run.

The one place that reads a run's answers for scoring: each agent's final distribution per
question (:func:`sandbox.forecast.distributions.final_distributions`; one-hot on the drawn
answer in the ``sample`` answer mode).
"""

from __future__ import annotations

from pathlib import Path

from sandbox.forecast.distributions import final_distributions
from sandbox.rundb import RunDatabase

Distributions = dict[int, dict[str, dict[str, float]]]
"""Agent id -> question id -> option -> probability."""


def respondent_distributions(database: str | Path, run_id: str) -> Distributions:
    """Each agent's final answer distribution per question (agents that never answered a
    question have no entry for it)."""
    db = RunDatabase(database, must_exist=True)
    try:
        return final_distributions(db, run_id)
    finally:
        db.close()
