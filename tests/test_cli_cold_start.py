"""Cold start: importing either CLI app and printing the ``--help`` of every command loads none
of the heavy libraries (the database layer, the graph, MinHash's scipy, the OpenAI types, the
model runtimes). They made ``sandbox --help`` take 3-4 s and ``personahub --help`` 6-9 s; the
command modules now import them inside the commands. Checked through ``sys.modules`` in a
fresh interpreter, not by timing, so a stray top-level import fails here on any machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

HEAVY = (
    "sqlalchemy",
    "sqlmodel",
    "numpy",
    "networkx",
    "mesa",
    "scipy",
    "datasketch",
    "openai",
    "pandas",
    "pyarrow",
    "sklearn",
    "torch",
    "sentence_transformers",
    "llama_cpp",
    "ray",
    "uvicorn",
    "starlette",
)

SCRIPT = """
import importlib, json, sys
import click, typer
from typer.testing import CliRunner

app = importlib.import_module(sys.argv[1]).app
after_import = sorted(m for m in HEAVY if m in sys.modules)


def paths(group, path=()):
    yield path
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from paths(command, (*path, name))
        else:
            yield (*path, name)


failed = []
helped = 0
for path in paths(typer.main.get_command(app)):
    result = CliRunner().invoke(app, [*path, "--help"])
    helped += 1
    if result.exit_code != 0 or "--help" not in result.output:
        failed.append(" ".join(path))
print(json.dumps({
    "after_import": after_import,
    "after_help": sorted(m for m in HEAVY if m in sys.modules),
    "helped": helped,
    "failed": failed,
}))
"""


def loaded_by(module: str) -> dict:
    """Heavy modules loaded by importing ``module`` and by every command's ``--help``."""
    done = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{SCRIPT}", module],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "module",
    ["sandbox.cli.app", "personahub.cli.app"],
    ids=["sandbox", "personahub"],
)
def test_cli_help_loads_no_heavy_library(module: str) -> None:
    found = loaded_by(module)
    assert found["failed"] == []
    assert found["helped"] > 5  # the walk reached the commands, not just the root
    assert found["after_import"] == []
    assert found["after_help"] == []
