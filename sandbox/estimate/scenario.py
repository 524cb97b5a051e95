"""The estimate of a run from a scenario file and run options, as ``sandbox estimate`` and
``sandbox run --dry-run`` give it: nothing is created and no model is called."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from personahub.llm import load_settings
from sandbox.estimate.dry import KnownAnswers
from sandbox.estimate.run import Estimate, estimate_cast
from sandbox.estimate.tokens import counter_for
from sandbox.run_options import RunOptions, llm_overrides, load_inputs


def estimate_scenario(
    scenario_path: Path,
    options: RunOptions,
    llm_cli: dict[str, Any],
    config_file: Path | None = None,
    known: KnownAnswers | None = None,
) -> Estimate:
    """What ``sandbox run`` with the same arguments is expected to spend.

    One concrete run: an experiment sums this over its runs (``Estimate`` supports ``+``).
    ``known`` gives a model's exact answers instead of typical ones (tests and benchmarks
    pass the fixture server's, to measure the estimate's machinery on its own).

    Raises:
        ScenarioError, PopulationError, ConfigError, RunError: bad input, one line each.
    """
    scenario, personas, graph = load_inputs(scenario_path, options)
    settings = load_settings(config_file, **llm_overrides(scenario, llm_cli))
    counter = counter_for(settings, settings.backend)
    return estimate_cast(
        scenario, personas, graph, settings, counter, settings.backend, known=known
    )
