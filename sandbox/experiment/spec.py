"""The ``experiment:`` and ``sweep:`` sections of a scenario file, read into concrete runs.

An experiment file is a forecast scenario (the base) plus::

    experiment:
      seeds: 3                     # replicates of every arm (run seeds: seed, seed+1, ...)
      control: control             # the reference arm (default: the first)
      vars: {price: "$29"}         # {{ price }} in scenario text, for every arm
      arms:
        control: {}
        cheap: {vars: {price: "$19"}}
        framed:
          vars: {price: "$19"}
          override:                # deep-merged into the base scenario
            timeline: {"0": {content: "..."}}
            questions: {intent: {ask: "..."}}
    sweep:                         # a grid: every combination is a point, for every arm
      vars: {price: ["$19", "$29"]}
      set: {interaction.activation: [0.5, 1.0]}
      max_runs: 64

Every problem is reported as ``file:line: field: message`` through the scenario loader, and
every concrete scenario (arm x sweep point) is validated like a plain scenario file.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from yaml.nodes import Node

from sandbox.experiment.render import Scalar, merge, render, set_path
from sandbox.scenario import Problem, ScenarioBase, ScenarioError, Strict
from sandbox.scenario_loader import (
    checked_scenario,
    problem_lines,
    read_scenario_file,
    validation_problems,
)

ARM_NAME = r"^[A-Za-z][A-Za-z0-9_-]{0,31}$"
MAX_RUNS = 64
"""Default cap on arms x seeds x sweep points: past it a typo in a grid would start hundreds
of runs."""
SHARED = ("population", "graph", "name", "mode", "seed")
"""Fields every arm shares: the paired design needs the same personas on the same graph."""


class Arm(Strict):
    """One arm: variables and overrides of the base scenario."""

    vars: dict[str, Scalar] = Field(default_factory=dict)
    override: dict[str, Any] = Field(default_factory=dict)

    @field_validator("override")
    @classmethod
    def _not_shared(cls, value: dict[str, Any]) -> dict[str, Any]:
        shared = [key for key in value if key in SHARED]
        if shared:
            raise ValueError(f"arms share {', '.join(SHARED)}: cannot override {shared[0]}")
        return value


class ExperimentSection(Strict):
    """The ``experiment:`` section."""

    seeds: int = Field(1, ge=1, le=50, description="Replicates of every arm.")
    control: str | None = Field(None, description="The reference arm; default the first.")
    vars: dict[str, Scalar] = Field(default_factory=dict)
    arms: dict[str, Arm] = Field(min_length=1)

    @field_validator("arms")
    @classmethod
    def _names(cls, value: dict[str, Arm]) -> dict[str, Arm]:
        bad = [name for name in value if not re.match(ARM_NAME, name)]
        if bad:
            raise ValueError(f"arm names are a letter, then letters, digits, _ or - ({bad[0]!r})")
        return value


class SweepSection(Strict):
    """The ``sweep:`` section: a grid over variables and scenario fields."""

    vars: dict[str, list[Scalar]] = Field(default_factory=dict)
    set: dict[str, list[Any]] = Field(default_factory=dict)
    max_runs: int = Field(MAX_RUNS, ge=1, le=1000, description="Cap on the number of runs.")

    @field_validator("vars", "set")
    @classmethod
    def _not_empty(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        empty = [name for name, values in value.items() if not values]
        if empty:
            raise ValueError(f"{empty[0]}: expected at least one value")
        return value

    @field_validator("set")
    @classmethod
    def _not_shared(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        shared = [key for key in value if key.split(".")[0] in SHARED]
        if shared:
            raise ValueError(f"every run shares {', '.join(SHARED)}: cannot sweep {shared[0]}")
        return value

    def points(self) -> list[dict[str, Any]]:
        """Every combination, as ``{name: value}`` (variables by name, fields by dotted path)."""
        axes = {**self.vars, **self.set}
        names = list(axes)
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes.values())]


@dataclass(frozen=True, slots=True)
class Condition:
    """One arm at one sweep point, as a concrete scenario.

    Attributes:
        arm: The arm's name.
        point: The sweep point (``{}`` without a sweep).
        scenario: The validated scenario of this arm at this point.
    """

    arm: str
    point: dict[str, Any]
    scenario: ScenarioBase

    @property
    def point_label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.point.items())

    @property
    def label(self) -> str:
        return f"{self.arm} [{self.point_label}]" if self.point else self.arm


@dataclass(frozen=True, slots=True)
class Experiment:
    """A read experiment file.

    Attributes:
        name: The base scenario's name.
        path: The file.
        base: The base scenario (without arms), for the shared population and graph.
        control: The reference arm.
        arms: Arm names in file order.
        seeds: Replicates of every condition.
        conditions: Every arm at every sweep point, points outermost.
    """

    name: str
    path: Path
    base: ScenarioBase
    control: str
    arms: tuple[str, ...]
    seeds: int
    conditions: tuple[Condition, ...]


def _section(model: type[Strict], data: Any, name: str) -> tuple[Any, list[Problem]]:
    try:
        return model.model_validate(data if data is not None else {}), []
    except ValidationError as exc:
        return None, validation_problems(exc, (name,))


def load_experiment(path: str | Path, seeds: int | None = None) -> Experiment:
    """Read an experiment file (a scenario with ``experiment:`` and/or ``sweep:``).

    Args:
        path: The file.
        seeds: Replicates, overriding ``experiment.seeds`` (``--seeds``).

    Raises:
        ScenarioError: One ``file:line: field: message`` line per problem.
    """
    path = Path(path)
    root, data = read_scenario_file(path)
    if "experiment" not in data and "sweep" not in data:
        message = "expected an `experiment:` or `sweep:` section (a plain scenario: `sandbox run`)"
        raise ScenarioError(problem_lines(path, root, [((), message, None)]))
    raw_experiment = data.pop("experiment", {"arms": {"base": {}}})
    experiment, problems = _section(ExperimentSection, raw_experiment, "experiment")
    sweep, sweep_problems = _section(SweepSection, data.pop("sweep", None), "sweep")
    problems += sweep_problems
    if problems:
        raise ScenarioError(problem_lines(path, root, problems))
    if seeds is not None and seeds < 1:
        raise ScenarioError([f"--seeds {seeds}: expected 1 or more"])
    n_seeds = seeds or experiment.seeds
    arms = list(experiment.arms)
    control = experiment.control or arms[0]
    if control not in experiment.arms:
        message = f"expected one of the arms ({', '.join(arms)})"
        raise ScenarioError(
            problem_lines(path, root, [(("experiment", "control"), message, control)])
        )
    points = sweep.points()
    total = len(arms) * n_seeds * len(points)
    if total > sweep.max_runs:
        where = ("sweep",) if sweep.points() != [{}] else ("experiment", "seeds")
        message = (
            f"{len(arms)} arms x {n_seeds} seeds x {len(points)} sweep points = {total} runs; "
            f"at most {sweep.max_runs} (raise sweep.max_runs or shrink the grid)"
        )
        raise ScenarioError(problem_lines(path, root, [(where, message, None)]))
    base = checked_scenario(path, root, render(data, {**_defaults(experiment, sweep)}, ())[0])
    if base.mode != "forecast":
        message = "experiments compare forecasts: expected mode forecast"
        raise ScenarioError(problem_lines(path, root, [(("mode",), message, base.mode)]))
    conditions = []
    for point in points:
        for name, arm in experiment.arms.items():
            conditions.append(_condition(path, root, data, experiment, sweep, name, arm, point))
    return Experiment(
        name=base.name,
        path=path,
        base=base,
        control=control,
        arms=tuple(arms),
        seeds=n_seeds,
        conditions=tuple(conditions),
    )


def _defaults(experiment: ExperimentSection, sweep: SweepSection) -> dict[str, Scalar]:
    """Variables of the base scenario alone: experiment vars, the first arm's and the first
    sweep value (the base must be a valid scenario by itself, for the shared population)."""
    first_arm = next(iter(experiment.arms.values()))
    return {
        **experiment.vars,
        **first_arm.vars,
        **{name: values[0] for name, values in sweep.vars.items()},
    }


def _condition(
    path: Path,
    root: Node | None,
    data: dict[str, Any],
    experiment: ExperimentSection,
    sweep: SweepSection,
    name: str,
    arm: Arm,
    point: dict[str, Any],
) -> Condition:
    """The concrete scenario of one arm at one sweep point.

    Raises:
        ScenarioError: Unknown variables, overrides that pick nothing, or a scenario that does
            not validate; each line says which arm (and point).
    """
    variables = {**experiment.vars, **arm.vars}
    variables.update({k: v for k, v in point.items() if k in sweep.vars})
    scenario_data, problems = render(data, variables, ())
    override, more = render(arm.override, variables, ("experiment", "arms", name, "override"))
    problems += more
    merged, more = merge(scenario_data, override, ("experiment", "arms", name, "override"))
    problems += more
    for field, value in point.items():
        if field in sweep.set:
            try:
                set_path(merged, field, value)
            except ValueError as exc:
                problems.append((("sweep", "set", field), str(exc), None))
    where = f"arm {name}" + (
        f" at {', '.join(f'{k}={v}' for k, v in point.items())}" if point else ""
    )
    try:
        if problems:
            raise ScenarioError(problem_lines(path, root, problems))
        scenario = checked_scenario(path, root, merged)
    except ScenarioError as exc:
        raise ScenarioError([f"{line} ({where})" for line in exc.problems]) from None
    return Condition(name, dict(point), scenario)
