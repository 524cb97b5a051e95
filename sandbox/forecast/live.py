"""Forecast mode's live figures for ``sandbox serve``: the forecast so far, as plain data.

The same analysis as the report (:func:`sandbox.forecast.analysis.build_forecast`), in its
``live`` form (no semantic-similarity comparison, no segments) and with fewer bootstrap
resamples, since the run page recomputes it after every committed step.
"""

from __future__ import annotations

from typing import Any

import yaml

from sandbox.forecast.analysis import build_forecast
from sandbox.forecast.scenario import ChoiceQuestion, ForecastScenario
from sandbox.forecast.stats import Estimate
from sandbox.rundb import RunDatabase, RunRow

LIVE_BOOT = 300
"""Bootstrap resamples of the live view (the report uses 1000)."""


def _point(estimate: Estimate) -> list[float | None]:
    return [estimate.value, estimate.low, estimate.high]


def live_figures(database: RunDatabase, run: RunRow) -> dict[str, Any]:
    """Key figures with intervals, each choice question's shares per step, and each agent's
    current answer to the first choice question (what the graph is coloured by). Only the
    graph's colours until the run commits its first step (there is no forecast yet)."""
    scenario = ForecastScenario.model_validate(yaml.safe_load(run.scenario_yaml))
    choice = next((q for q in scenario.questions if isinstance(q, ChoiceQuestion)), None)
    figures: list[dict[str, Any]] = []
    shares: list[dict[str, Any]] = []
    if run.last_step >= 0:
        forecast = build_forecast(database, run.id, n_boot=LIVE_BOOT, live=True)
        figures = [
            {"id": k.id, "label": k.label, "text": k.text, "interval": k.interval}
            for k in forecast.key_figures
        ]
        shares = [
            {
                "question": q.id,
                "ask": q.question.ask,
                "series": [
                    {"label": s.label, "points": [_point(p) for p in s.points]} for s in q.series
                ],
            }
            for q in forecast.questions
            if q.percent and q.series
        ]
    answers: dict[int, str] = {}
    if choice is not None:
        for agent_id, (_step, state) in database.states(run.id).items():
            answer = (state.get("answers") or {}).get(choice.id)
            if answer in choice.options:
                answers[agent_id] = answer
    return {
        "figures": figures,
        "shares": shares,
        "colour_by": choice.id if choice else None,
        "categories": list(choice.options) if choice else [],
        "answers": answers,
    }
