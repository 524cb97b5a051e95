"""End to end: ``personahub build`` in a subprocess with the embedded model (default backend).

Ten short texts written for this test, one angle, one hop with one related persona each:
about twenty structured answers from SmolLM2-135M, a minute or so on two cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from personahub.store import PersonaStore

pytestmark = pytest.mark.slow

TEXTS = [
    "The city council approved a protected bike lane on Elm Street, opening in May.",
    "Feed the sourdough starter twice a day and use rye flour for a tangier loaf.",
    "Quarterly earnings beat expectations as cloud revenue grew 28 percent.",
    "Night-shift nurses asked for safer parking near the hospital's east entrance.",
    "This week's chess club puzzle: white to move and mate in three.",
    "The community choir seeks tenors for its winter concert at St Mary's church.",
    "Tide tables for the northern harbour: high water at 06:12 on Saturday.",
    "A new study links poor sleep in teenagers to late-night phone use.",
    "Our allotment society swaps seeds every spring; bring tomatoes and beans.",
    "The library's repair café fixes toasters, lamps and bicycles for free.",
]


def _build(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "personahub.cli.app", "build", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_build_with_the_embedded_model(tmp_path: Path) -> None:
    corpus = tmp_path / "texts.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PERSONAHUB_", "OPENAI_"))}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), COLUMNS="120")
    args = [str(corpus), "--store", "p.db", "--hops", "1", "--per-hop", "1", "--angles", "read"]

    first = _build([*args, "--quiet"], tmp_path, env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "stored" in first.stdout and "SmolLM2" in first.stdout

    store = PersonaStore(tmp_path / "p.db")
    stats = store.stats()
    assert stats["source_texts"] >= 5, first.stdout
    assert stats["by_origin"].get("text_to_persona", 0) >= 3, first.stdout
    assert stats["by_origin"].get("persona_to_persona", 0) >= 1, first.stdout
    assert stats["edges"] >= 1
    personas = {p.id: p for p in store.personas()}
    for persona in personas.values():
        assert persona.text[:2] in ("A ", "An") and persona.model
        if persona.origin == "text_to_persona":
            assert persona.hop == 0 and persona.angle == "read" and persona.source_text_id
        else:
            assert persona.hop == 1 and persona.parent_id in personas
    for edge in store.edges():
        assert personas[edge.src_id].hop == 0 and edge.relation

    # A rerun skips every text and adds nothing; what it asks again comes from the cache.
    second = _build([*args, "--quiet"], tmp_path, env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert store.stats() == stats
    assert "texts skipped" in second.stdout
