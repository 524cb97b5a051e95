"""End to end: the shipped harbour-town scenario on the embedded model, 4 NPCs, 1 step,
exported to every training-data format."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def _sandbox(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sandbox.cli", *args],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "120"},
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_harbour_town_runs_on_the_embedded_model_and_exports(tmp_path):
    datasets = pytest.importorskip("datasets")
    scenario = ROOT / "scenarios" / "harbour_town.yaml"
    run = _sandbox(
        ["run", str(scenario), "--agents", "4", "--steps", "1", "--out", "runs", "--quiet"],
        tmp_path,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "conversations" in run.stdout and "report: " in run.stdout
    run_dir = next((tmp_path / "runs").iterdir())
    html = (run_dir / "report.html").read_text()
    assert "NPC world report" in html and "Saltmere" in html

    counts = {}
    for fmt, name in (("openai", "d.jsonl"), ("sharegpt", "d.json"), ("parquet", "d.parquet")):
        out = tmp_path / name
        result = _sandbox(
            ["export", str(run_dir), "--format", fmt, "--role", "npc", "--out", str(out)],
            tmp_path,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        kind = "parquet" if fmt == "parquet" else "json"
        if fmt == "sharegpt":
            counts[fmt] = len(json.loads(out.read_text()))
        else:
            counts[fmt] = datasets.load_dataset(kind, data_files=str(out), split="train").num_rows
    assert counts["openai"] == counts["sharegpt"] == counts["parquet"]
    assert counts["openai"] >= 1
