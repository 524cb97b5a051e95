"""``sandbox estimate``: what a run would spend, predicted without calling a model (the same
printout as ``sandbox run --dry-run``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from personahub.cli import llm_options as opt
from personahub.cli.common import console
from sandbox.cli.common import fail_input, input_errors

if TYPE_CHECKING:  # the run machinery loads when a command runs, not for `--help`
    from sandbox.run_options import RunOptions

ESTIMATE_FLAGS = ("backend", "base_url", "model", "model_path", "config", "price_in", "price_out")

Agents = Annotated[
    int | None, typer.Option("--agents", help="Number of agents (overrides sample).")
]
Steps = Annotated[int | None, typer.Option("--steps", help="Number of steps.")]
Seed = Annotated[int | None, typer.Option("--seed", help="Run seed.")]


def register(app: typer.Typer) -> None:
    """Add ``estimate`` to the ``sandbox`` app."""
    app.command()(opt.llm_flags(*ESTIMATE_FLAGS)(estimate))


def print_estimate(scenario: Path, options: RunOptions, llm: opt.LLMFlags) -> None:
    """Estimate the run of ``scenario`` with ``options`` and print it (exits 1 on bad input)."""
    # Imported here: the estimate steps the run's model, which `--help` never needs.
    from sandbox.estimate.scenario import estimate_scenario

    try:
        found = estimate_scenario(scenario, options, llm.overrides(), llm.config)
    except input_errors() as exc:
        fail_input(exc)
    table = Table(title="estimate", show_header=False, title_justify="left")
    table.add_column("")
    table.add_column("", justify="right")
    table.add_row("model calls", f"{found.calls:,}")
    table.add_row("prompt tokens", f"{found.prompt_tokens:,}")
    table.add_row("completion tokens", f"{found.completion_tokens:,}")
    table.add_row("total tokens", f"{found.total_tokens:,}")
    money = "set [llm] price_in/price_out" if found.cost is None else f"{found.cost:,.4f}"
    table.add_row("money", money)
    console.print(table)
    console.print(
        f"tokens counted with {found.tokenizer}; no model was called. Assumes every answer "
        "comes from the model (no cache hits) and validates the first time.",
        highlight=False,
        soft_wrap=True,
    )
    for assumption in found.assumptions:
        console.print(f"Assumes {assumption}.", highlight=False, soft_wrap=True)


def estimate(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    agents: Agents = None,
    steps: Steps = None,
    seed: Seed = None,
    llm: opt.LLMFlags = opt.NO_FLAGS,
) -> None:
    """Predict a run's model calls, prompt and completion tokens and (with prices) money,
    from the scenario, the population, the graph and the prompts, calling no model."""
    from sandbox.run_options import RunOptions

    print_estimate(scenario, RunOptions(agents=agents, steps=steps, seed=seed), llm)
