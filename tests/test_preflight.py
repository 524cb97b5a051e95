"""The backend pre-flight check before a run's first step (issue 17, item 3): a bad base
URL, an unreachable server or a model file that is not a GGUF fails in one line, non-zero,
before any run folder or database row exists."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sandbox.cli import app

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "library_hours.yaml"


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--backend", "openai", "--base-url", "not-a-url"], "is not an http(s) URL"),
        (["--backend", "openai", "--base-url", "ftp://example.com/v1"], "is not an http(s) URL"),
        (["--backend", "openai", "--base-url", "http://127.0.0.1:9/v1"], "no endpoint answers"),
    ],
)
def test_bad_server_fails_in_one_line_before_the_run(
    tmp_path: Path, flags: list[str], says: str
) -> None:
    out = tmp_path / "runs"
    args = ["run", str(SCENARIO), "--agents", "3", "--steps", "1", "--out", str(out), "--quiet"]
    result = CliRunner().invoke(app, [*args, *flags], env={"OPENAI_API_KEY": "sk-test"})
    assert result.exit_code != 0
    assert says in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not out.exists() or not any(out.iterdir())


def test_model_file_that_is_not_gguf_fails_in_one_line(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"not a model at all")
    out = tmp_path / "runs"
    args = ["run", str(SCENARIO), "--agents", "3", "--steps", "1", "--out", str(out), "--quiet"]
    result = CliRunner().invoke(app, [*args, "--backend", "local", "--model-path", str(fake)])
    assert result.exit_code != 0
    assert "is not a GGUF model" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not out.exists() or not any(out.iterdir())
