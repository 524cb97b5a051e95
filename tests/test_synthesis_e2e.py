"""End to end: ``personahub synthesize`` and ``diversity`` with the embedded model.

One task (instruction), three personas, the default local backend in a subprocess: the
real grammar-constrained path, the journal and the output file, then a rerun that has
nothing left to do.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from personahub.synthesis import SynthesisRow
from tests.support.synth import PERSONAS, write_personas

pytestmark = pytest.mark.slow


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "120"}
    return subprocess.run(
        [sys.executable, "-m", "personahub.cli.app", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_synthesize_instructions_with_the_embedded_model(tmp_path):
    write_personas(tmp_path / "people.jsonl", PERSONAS[:3])
    args = ["synthesize", "--task", "instruction", "--personas", "people.jsonl"]
    args += ["--out", "out.jsonl", "--quiet"]
    first = _cli(args, tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr

    journal = [json.loads(line) for line in (tmp_path / "out.jsonl.journal.jsonl").open()]
    assert {e["item"] for e in journal[1:]} == {"p0#0", "p1#0", "p2#0"}
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").open()]
    assert rows, first.stdout
    for row in rows:
        SynthesisRow.model_validate(row)
        assert row["backend"] == "local" and row["model"].startswith("SmolLM2")
        assert row["output"]["prompt"].strip()

    again = _cli(args, tmp_path)
    assert again.returncode == 0
    assert re.search(r"already done \(journal\)\s*│\s*3\s*│", again.stdout), again.stdout

    diversity = _cli(["diversity", "out.jsonl", "--json"], tmp_path)
    assert diversity.returncode == 0, diversity.stderr
    metrics = json.loads(diversity.stdout)
    assert metrics["personas"]["count"] == len(rows)
    assert 0 < metrics["outputs"]["distinct_1"] <= 1


def test_synthesize_knowledge_with_the_embedded_model(tmp_path):
    """Issue 17, item 6: the knowledge task's 1,200-character text field made llama.cpp
    refuse its grammar and the process segfault (exit 139)."""
    write_personas(tmp_path / "people.jsonl", PERSONAS[:1])
    args = ["synthesize", "--task", "knowledge", "--personas", "people.jsonl"]
    result = _cli([*args, "--out", "out.jsonl", "--quiet"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error parsing grammar" not in result.stderr
