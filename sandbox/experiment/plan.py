"""An experiment's plan: every condition (arm x sweep point) x seed as a concrete run."""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.experiment.spec import Condition, Experiment
from sandbox.run_options import RunOptions, effective_scenario
from sandbox.rundb import ExperimentRunRow
from sandbox.scenario import ScenarioBase


@dataclass(frozen=True, slots=True)
class PlannedRun:
    """One run of an experiment.

    Attributes:
        condition: Its arm and sweep point.
        seed_index: Which replicate (0-based); the run seed is the base seed plus it.
        run_id: Its id in the experiment's run database.
        scenario: The effective scenario (``--agents/--steps`` and the seed applied).
    """

    condition: Condition
    seed_index: int
    run_id: str
    scenario: ScenarioBase


def plan(experiment: Experiment, experiment_id: str, options: RunOptions) -> list[PlannedRun]:
    """Every condition x seed, seeds innermost; run ids say arm, point and seed.

    Raises:
        RunError, ScenarioError: ``--agents/--steps`` that no scenario of it can take.
    """
    many_points = len({c.point_label for c in experiment.conditions}) > 1
    points: dict[str, int] = {}
    out = []
    for condition in experiment.conditions:
        point = points.setdefault(condition.point_label, len(points))
        for seed_index in range(experiment.seeds):
            seed = experiment.base.seed + seed_index
            flags = RunOptions(agents=options.agents, steps=options.steps, seed=seed)
            where = f"-p{point}" if many_points else ""
            run_id = f"{experiment_id}-{condition.arm}{where}-s{seed_index}"
            scenario = effective_scenario(condition.scenario, flags)
            out.append(PlannedRun(condition, seed_index, run_id, scenario))
    return out


def records(
    experiment: Experiment, experiment_id: str, runs: list[PlannedRun]
) -> list[ExperimentRunRow]:
    """The experiment's rows of ``experiment_runs`` for its planned runs."""
    return [
        ExperimentRunRow(
            run_id=run.run_id,
            experiment=experiment_id,
            arm=run.condition.arm,
            control=run.condition.arm == experiment.control,
            seed_index=run.seed_index,
            point=run.condition.point,
            position=position,
        )
        for position, run in enumerate(runs)
    ]
