"""Each agent's final answer distribution per choice and likert question, from a run database.

In the ``logprobs`` and ``verbalized`` answer modes an interaction row stores the agent's
distributions (:data:`~sandbox.forecast.answer_modes.DISTRIBUTIONS_KEY`); in ``sample`` mode
the distribution is one-hot on the answer given. An agent's final distribution for a question
is that of its latest successful answer to it.
"""

from __future__ import annotations

import yaml

from sandbox.forecast.answer_modes import (
    DISTRIBUTIONS_KEY,
    DistributionQuestion,
    distribution_questions,
    option_labels,
)
from sandbox.forecast.scenario import ForecastScenario
from sandbox.rundb import RunDatabase

Distributions = dict[int, dict[str, dict[str, float]]]
"""agent id -> question id -> option label -> probability."""


def _one_hot(question: DistributionQuestion, answer: object) -> dict[str, float] | None:
    labels = option_labels(question)
    label = str(answer)
    if label not in labels or isinstance(answer, bool):
        return None
    return {option: float(option == label) for option in labels}


def final_distributions(database: RunDatabase, run_id: str) -> Distributions:
    """Each agent's final distribution over the options of every choice and likert question
    (likert options are ``"1"``..``"scale"``); agents that never answered are absent.

    Raises:
        ValueError: No such run.
    """
    run = database.run(run_id)
    if run is None:
        raise ValueError(f"no run {run_id!r} in {database.target}")
    scenario = ForecastScenario.model_validate(yaml.safe_load(run.scenario_yaml))
    questions = distribution_questions(scenario)
    out: Distributions = {}
    # Oldest first, so an agent's later answers replace its earlier ones.
    for row in sorted(database.interactions(run.id), key=lambda r: r.step):
        parsed = row.parsed
        if row.error_kind is not None or not isinstance(parsed, dict):
            continue
        stored = parsed.get(DISTRIBUTIONS_KEY) or {}
        for question in questions:
            entry = stored.get(question.id)
            if entry is not None:
                probs: dict[str, float] | None = {k: float(v) for k, v in entry["probs"].items()}
            else:
                probs = _one_hot(question, parsed.get(question.id))
            if probs is not None:
                out.setdefault(row.agent_id, {})[question.id] = probs
    return out
