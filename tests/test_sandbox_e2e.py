"""End to end with the embedded model: the real CLI runs a shipped scenario to a report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.rundb import RunDatabase

REPO = Path(__file__).resolve().parents[1]
SANDBOX = Path(sys.executable).with_name("sandbox")


@pytest.mark.slow
def test_product_launch_on_the_embedded_model(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env = {k: v for k, v in env.items() if not k.startswith(("PERSONAHUB_", "OPENAI_"))}
    done = subprocess.run(
        [
            str(SANDBOX),
            "run",
            str(REPO / "scenarios/product_launch.yaml"),
            "--agents",
            "10",
            "--steps",
            "2",
            "--out",
            str(tmp_path / "runs"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (db_path,) = (tmp_path / "runs").glob("*/run.db")
    report = db_path.parent / "report.html"
    assert report.is_file() and str(report) in done.stdout.replace("\n", "")

    database = RunDatabase(db_path)
    run = database.run()
    assert run is not None and run.status == "completed" and run.backend == "local"
    assert len(database.agents(run.id)) == 10
    interactions = database.interactions(run.id)
    assert interactions and {i.step for i in interactions} <= {0, 1}
    answered = [i for i in interactions if i.parsed is not None]
    assert answered, [i.error_message for i in interactions]
    for row in answered:
        assert row.parsed["intent"] in {"yes", "maybe", "no"}
        assert 1 <= row.parsed["price_fair"] <= 5
        assert row.prompt_tokens > 0 and row.completion_tokens > 0
    assert run.usage["calls"] >= len(interactions)
    html = report.read_text()
    assert "ebike-subscription-launch" in html and "<img" in html
