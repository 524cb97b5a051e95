"""Run options that cannot be honoured say so in one line (issue 17, items 11 and 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.population import load_cast
from sandbox.run_folders import RunError
from sandbox.run_options import RunOptions, effective_scenario
from sandbox.runner import start_run
from sandbox.scenario import PersonaSelector, Population
from sandbox.scenario_loader import load_scenario

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "scenarios" / "product_launch.yaml"


def test_more_agents_than_personas_says_how_many_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cast = load_cast(Population(), seed=0, base_dir=tmp_path, size=100_000_000)
    n = len(cast.personas)
    assert cast.note == (
        f"--agents asks for 100,000,000 agents, but only {n:,} personas are in the population: "
        f"running with {n:,}"
    )
    assert load_cast(Population(), seed=0, base_dir=tmp_path, size=5).note == ""
    picky = Population(sample=1000, filter=PersonaSelector(regex="nurse"))
    assert "population.sample asks for 1,000" in load_cast(picky, 0, tmp_path).note
    assert "match the filter" in load_cast(picky, 0, tmp_path).note


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (RunOptions(steps=-1), "--steps -1: expected 1 or more"),
        (RunOptions(steps=0), "--steps 0: expected 1 or more"),
        (RunOptions(agents=0), "--agents 0: expected 1 or more"),
    ],
)
def test_non_positive_steps_or_agents(options: RunOptions, message: str) -> None:
    with pytest.raises(RunError) as caught:
        effective_scenario(load_scenario(SCENARIO), options)
    assert str(caught.value) == message


def test_out_pointing_at_a_file(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    out.write_text("not a folder")
    with pytest.raises(RunError, match="is a file; expected the folder"):
        start_run(SCENARIO, RunOptions(out=out), {}, show_progress=False)
