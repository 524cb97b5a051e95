"""`sandbox --help` and `sandbox validate` import none of the heavy libraries (issue 17, item
18): they took 5-9 s to import on every command. Checked in a fresh interpreter through
``sys.modules``, not by timing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = (
    "openai",
    "pandas",
    "scipy",
    "mesa",
    "torch",
    "sentence_transformers",
    "llama_cpp",
    "ray",
)

SCRIPT = """
import json, sys
from sandbox.cli import main
sys.argv = ["sandbox", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"code": code, "heavy": [m for m in HEAVY if m in sys.modules]}))
"""


def imported_by(*args: str) -> dict:
    script = f"HEAVY = {HEAVY!r}\n{SCRIPT}"
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


# Every command's --help is checked by tests/test_cli_cold_start.py; here, a command that
# does its work without them.
@pytest.mark.parametrize(
    "args",
    [["validate", "scenarios/product_launch.yaml"], ["validate", "scenarios/harbour_town.yaml"]],
    ids=["validate", "validate-npc"],
)
def test_no_heavy_imports(args: list[str]) -> None:
    result = imported_by(*args)
    assert result == {"code": 0, "heavy": []}


def _commands_with_config(group, path=()):  # type: ignore[no-untyped-def]
    import click

    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands_with_config(command, (*path, name))
        elif any(p.name == "config" for p in command.params):
            yield (*path, name)


@pytest.mark.parametrize("module", ["sandbox.cli", "personahub.cli.app"])
def test_help_keeps_llm_table_name(module: str) -> None:
    # "[llm]" is Rich markup unless escaped: the help said "with an  table" (issue 17, item 16)
    import importlib

    import typer
    from typer.testing import CliRunner

    app = importlib.import_module(module).app
    group = typer.main.get_command(app)
    commands = list(_commands_with_config(group))
    assert commands
    for command in commands:
        result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, command
        assert "an [llm] table" in result.output, command
