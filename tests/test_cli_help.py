"""Help text fits the hand at 80 columns (issue 18, item 12): docstrings are re-wrapped, not kept
ragged; option help is not squeezed into a narrow column; folder flags are named alike."""

from __future__ import annotations

import click
import pytest
import typer
from typer.testing import CliRunner

from personahub.cli.app import app as personahub_app
from sandbox.cli import app as sandbox_app


def _commands(group: click.Group, path: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def _all() -> list[tuple[typer.Typer, tuple[str, ...]]]:
    found = []
    for app in (personahub_app, sandbox_app):
        found += [(app, path) for path, _ in _commands(typer.main.get_command(app))]
    return found


def _help(app: typer.Typer, path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return "\n".join(line.rstrip() for line in result.output.splitlines())


@pytest.mark.parametrize(
    ("app", "path"), _all(), ids=lambda v: " ".join(v) if isinstance(v, tuple) else ""
)
def test_help_is_wrapped_to_80_columns(app: typer.Typer, path: tuple[str, ...]) -> None:
    text = _help(app, path)
    assert max(len(line) for line in text.splitlines()) <= 80
    description = text.split("\n\n", 1)[1].split("\nOptions:")[0].split("\nArguments:")[0]
    for paragraph in description.strip().split("\n\n"):
        lines = paragraph.splitlines()
        # a hard-wrapped docstring came out as a full line followed by one word or two
        for line in lines[:-1]:
            assert len(line) >= 55, f"ragged line in {' '.join(path)} --help: {line!r}"


def test_option_help_is_not_squeezed() -> None:
    text = _help(personahub_app, ("synthesize",))
    assert "--temperature" in text
    assert "Generation temperature." in text
    assert "A persona store (.db or SQLAlchemy URL) or a" in text


def test_run_folder_flag_is_runs_everywhere() -> None:
    for path, command in _commands(typer.main.get_command(sandbox_app)):
        for param in command.params:
            if param.name in ("out", "runs") and "Folder holding run folders" in (
                getattr(param, "help", "") or ""
            ):
                assert "--runs" in param.opts, path
