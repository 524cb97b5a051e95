"""Issue 18 item 8: `sandbox list` shows every run id whole, whatever the terminal width, so
it can be copied into `report`, `resume` and `export`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.runs import DEFAULT_SCENARIO, make_run

LONG_NAME = "congestion-charge-with-a-rather-long-name"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A runs folder holding one finished run with a long id."""
    tmp = tmp_path_factory.mktemp("list")
    scenario = DEFAULT_SCENARIO.replace("name: test-run", f"name: {LONG_NAME}")
    scenario = scenario.replace("sample: 16", "sample: 4")
    _, run_id = make_run(tmp, scenario)
    return tmp / "runs", run_id


def _list(out: Path, columns: int, *flags: str) -> str:
    env = {**os.environ, "COLUMNS": str(columns), "PYTHONPATH": os.getcwd()}
    done = subprocess.run(
        [sys.executable, "-m", "sandbox.cli", "list", "--out", str(out), *flags],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("columns", [80, 120])
def test_list_shows_whole_run_ids(runs: tuple[Path, str], columns: int) -> None:
    out, run_id = runs
    assert len(run_id) > 60
    listed = _list(out, columns)
    assert run_id in listed
    # the other columns stay readable too: no word broken over lines
    assert "completed" in listed and "3/3" in listed and "openai:fake-model" in listed


def test_list_plain_is_tab_separated(runs: tuple[Path, str]) -> None:
    out, run_id = runs
    header, row = _list(out, 80, "--plain").splitlines()
    assert header.split("\t") == ["run", "status", "steps", "agents", "model", "created"]
    assert row.split("\t")[:5] == [run_id, "completed", "3/3", "4", "openai:fake-model"]
