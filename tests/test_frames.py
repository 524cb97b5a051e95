"""A run as pandas DataFrames and as CSV/Parquet files (issue 18, item 11)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from sandbox import load_run
from sandbox.cli import app
from sandbox.run_folders import RunError
from tests.support.runs import make_run, scripted


def _answer(index: int, step: int) -> dict[str, object]:
    return {
        "reaction": "I read about it.",
        "intent": "yes" if index % 2 else "no",
        "price_ok": 1 + step,
        "spend": 10 * step,
        "wish": "More stations.",
        "post": "",
    }


@pytest.fixture
def run_db(tmp_path: Path) -> tuple[Path, str]:
    return make_run(tmp_path, responder=scripted(_answer, run_seed=5, steps=3))


def test_tables_hold_the_run(run_db: tuple[Path, str]) -> None:
    path, run_id = run_db
    run = load_run(path.parent)
    assert run.run_id == run_id
    assert run.info["status"] == "completed"
    agents = run.agents
    assert len(agents) == 16
    assert {"agent_id", "persona", "age_band"} <= set(agents.columns)  # attributes spread
    interactions = run.interactions
    assert {"step", "agent_id", "intent", "price_ok", "spend", "reaction"} <= set(
        interactions.columns
    )
    joined = interactions.merge(agents, on="agent_id")
    assert len(joined) == len(interactions)
    # the scripted answers come back as written: price_ok = 1 + step
    assert (interactions["price_ok"] == interactions["step"] + 1).all()
    assert list(run.metrics["step"]) == [0, 1, 2]
    assert not run.edges.empty
    assert run.dialogue.empty
    run.close()


def test_tables_command_writes_csv_and_parquet(run_db: tuple[Path, str], tmp_path: Path) -> None:
    path, _ = run_db
    for fmt in ("csv", "parquet"):
        target = tmp_path / fmt
        result = CliRunner().invoke(
            app, ["tables", str(path.parent), "--to", str(target), "--format", fmt]
        )
        assert result.exit_code == 0, result.output
        names = sorted(p.name for p in target.iterdir())
        assert names == sorted(
            f"{t}.{fmt}" for t in ("agents", "interactions", "metrics", "messages", "edges")
        )
        read = pd.read_csv if fmt == "csv" else pd.read_parquet
        assert len(read(target / f"metrics.{fmt}")) == 3


def test_missing_run_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="no run found"):
        load_run(tmp_path / "nothing")
    result = CliRunner().invoke(app, ["tables", str(tmp_path / "nothing")])
    assert result.exit_code == 2
    assert "no run found" in result.output
