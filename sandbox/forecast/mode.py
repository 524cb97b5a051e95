"""Forecast mode's part of the mode registry (:mod:`sandbox.modes`): how its runs are built,
resumed, recorded and described."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.forecast.model import ForecastModel
from sandbox.forecast.scenario import ForecastScenario

if TYPE_CHECKING:
    from sandbox.modes import RunModel, RunSetup
    from sandbox.rundb import AgentRow, RunDatabase, RunRow


def build(setup: RunSetup) -> ForecastModel:
    """The model of a new run."""
    assert isinstance(setup.scenario, ForecastScenario)
    return ForecastModel(
        setup.scenario,
        setup.personas,
        setup.graph,
        setup.llm,
        seed=setup.seed,
        run_id=setup.run_id,
        database=setup.database,
        loop=setup.loop,
    )


def rebuild(setup: RunSetup, agents: list[AgentRow]) -> ForecastModel:
    """The model of a run being resumed: forecast agents need nothing beyond their personas."""
    return build(setup)


def restore(model: RunModel, database: RunDatabase, run: RunRow) -> None:
    """Agent states, random state and metrics after the run's last step; events that reached
    agents after their last save are replayed from the recorded deliveries."""
    assert isinstance(model, ForecastModel)
    model.restore(
        run.last_step,
        run.rng_state or [],
        database.states(run.id),
        database.messages(run.id, kind="event"),
        [row.metrics for row in database.step_metrics(run.id)],
    )


def agent_row(agent: Any) -> dict[str, Any]:
    """Nothing beyond the common columns: a forecast agent's system prompt is in every one
    of its interactions already."""
    return {}
