"""Gateway configuration: source precedence, one-line config errors, and `personahub llm check`
failing cleanly (one ``error:`` line, exit code 2, no traceback)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from personahub.cli.llm_options import LLMFlags
from personahub.llm import ConfigError, load_settings
from personahub.llm.settings import LOCAL_MODEL_NAME

KEY_IN_TOML = "sk-toml-000000000000"
KEY_IN_ENV = "sk-env-1111111111111"
KEY_ON_CLI = "sk-cli-2222222222222"


def write_config(folder: Path, body: str, name: str = "persona-sandbox.toml") -> Path:
    path = folder / name
    path.write_text(body)
    return path


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current directory, so no stray ./persona-sandbox.toml is read."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


# --------------------------------------------------------------------------- precedence


def test_defaults(workdir: Path) -> None:
    settings = load_settings()
    assert settings.backend == "local"
    assert settings.model_name == LOCAL_MODEL_NAME
    assert settings.cache
    assert settings.cache_path == Path(os.environ["XDG_CACHE_HOME"]).joinpath(
        "persona-sandbox", "llm-cache.sqlite"
    )
    assert settings.api_key is None
    assert settings.endpoints == []


def test_cli_beats_env_beats_toml_beats_defaults(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(
        workdir,
        '[llm]\nbackend = "openai"\nmodel = "toml-model"\ntemperature = 0.1\n'
        "max_tokens = 100\nconcurrency = 3\n",
        name="custom.toml",
    )
    monkeypatch.setenv("PERSONAHUB_MODEL", "env-model")
    monkeypatch.setenv("PERSONAHUB_TEMPERATURE", "0.2")
    settings = load_settings(config, model="cli-model", concurrency=None)
    assert settings.backend == "openai"  # toml
    assert settings.model == "cli-model"  # cli over env over toml
    assert settings.temperature == 0.2  # env over toml
    assert settings.max_tokens == 100  # toml over default
    assert settings.concurrency == 3  # an unset CLI flag (None) overrides nothing
    assert settings.timeout_s == 60.0  # default


def test_endpoint_and_key_precedence_including_openai_variables(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(
        workdir,
        f'[llm]\nbackend = "openai"\nbase_url = "http://toml:1/v1"\napi_key = "{KEY_IN_TOML}"\n'
        'base_urls = ["http://toml:2/v1"]\n',
    )
    toml_only = load_settings(config)
    assert toml_only.endpoints == ["http://toml:1/v1", "http://toml:2/v1"]
    assert toml_only.api_key is not None
    assert toml_only.api_key.get_secret_value() == KEY_IN_TOML

    monkeypatch.setenv("OPENAI_BASE_URL", "http://env:1/v1")
    monkeypatch.setenv("OPENAI_API_KEY", KEY_IN_ENV)
    monkeypatch.setenv("PERSONAHUB_BASE_URLS", "http://env:2/v1, http://env:3/v1")
    from_env = load_settings(config)
    assert from_env.endpoints == ["http://env:1/v1", "http://env:2/v1", "http://env:3/v1"]
    assert from_env.api_key is not None
    assert from_env.api_key.get_secret_value() == KEY_IN_ENV

    from_cli = load_settings(
        config, base_url="http://cli:1/v1", api_key=KEY_ON_CLI, base_urls=["http://cli:2/v1"]
    )
    assert from_cli.endpoints == ["http://cli:1/v1", "http://cli:2/v1"]
    assert from_cli.api_key is not None
    assert from_cli.api_key.get_secret_value() == KEY_ON_CLI


def test_personahub_variables_beat_openai_variables(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY_IN_ENV)
    monkeypatch.setenv("PERSONAHUB_API_KEY", KEY_ON_CLI)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://openai-var/v1")
    monkeypatch.setenv("PERSONAHUB_BASE_URL", "http://personahub-var/v1")
    settings = load_settings(backend="openai")
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == KEY_ON_CLI
    assert settings.base_url == "http://personahub-var/v1"


def test_unprefixed_variables_are_ignored(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEY", "sk-someone-elses-key")
    monkeypatch.setenv("BASE_URL", "http://elsewhere/v1")
    monkeypatch.setenv("MODEL", "elsewhere-model")
    settings = load_settings(backend="openai")
    assert settings.api_key is None
    assert settings.base_url is None
    assert settings.model is None


def test_base_urls_variable_accepts_a_json_list(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERSONAHUB_BASE_URLS", '["http://a/v1", "http://b/v1"]')
    assert load_settings(backend="openai").base_urls == ["http://a/v1", "http://b/v1"]


def test_config_file_from_variable_and_from_current_directory(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(workdir, '[llm]\nmodel = "from-cwd"\n')
    assert load_settings().model == "from-cwd"
    elsewhere = write_config(tmp_path, '[llm]\nmodel = "from-variable"\n', name="other.toml")
    monkeypatch.setenv("PERSONAHUB_CONFIG", str(elsewhere))
    assert load_settings().model == "from-variable"


def test_cli_flags_map_to_overrides(workdir: Path) -> None:
    flags = LLMFlags(base_url=["http://a/v1", "http://b/v1"], no_cache=True, max_calls=5)
    overrides = flags.overrides()
    settings = load_settings(**overrides)
    assert settings.backend == "openai"
    assert settings.endpoints == ["http://a/v1", "http://b/v1"]
    assert not settings.cache
    assert settings.max_calls == 5


# --------------------------------------------------------------------------- errors


def assert_one_line(error: ConfigError, *fragments: str) -> None:
    text = str(error)
    assert "\n" not in text
    for fragment in fragments:
        assert fragment in text


def test_unknown_backend_is_a_one_line_config_error(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(backend="gemini")
    assert_one_line(info.value, "backend", "gemini")

    monkeypatch.setenv("PERSONAHUB_BACKEND", "vllm")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert_one_line(info.value, "backend", "vllm")

    monkeypatch.delenv("PERSONAHUB_BACKEND")
    config = write_config(workdir, '[llm]\nbackend = "tgi"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert_one_line(info.value, "backend", "tgi")


def test_bad_toml_is_a_config_error(workdir: Path) -> None:
    config = write_config(workdir, "[llm\nbackend = \n")
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert_one_line(info.value, str(config), "TOML")


def test_other_config_errors(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(workdir / "missing.toml")
    assert_one_line(info.value, "missing.toml", "not found")

    with pytest.raises(ConfigError) as info:
        load_settings(write_config(workdir, 'llm = "flat"\n'))
    assert_one_line(info.value, "[llm]")

    with pytest.raises(ConfigError) as info:
        load_settings(write_config(workdir, "[llm]\nunknown_knob = 1\n"))
    assert_one_line(info.value, "unknown_knob")

    monkeypatch.setenv("PERSONAHUB_MAX_CALLS", "many")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert_one_line(info.value, "max_calls", "many")


def test_secrets_stay_out_of_errors_and_descriptions(workdir: Path) -> None:
    settings = load_settings(backend="openai", api_key=KEY_ON_CLI, base_url="http://x/v1")
    assert KEY_ON_CLI not in repr(settings)
    assert KEY_ON_CLI not in str(settings.describe())
    assert settings.describe()["api_key"] == "set"
    with pytest.raises(ConfigError) as info:
        load_settings(backend="openai", api_key=KEY_ON_CLI, temperature=9)
    assert KEY_ON_CLI not in str(info.value)
    # A key of the wrong type is reported by field name, without its value.
    config = write_config(workdir, "[llm]\napi_key = 314159265358\nbase_url = 5\n")
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert_one_line(info.value, "api_key:", "base_url:")
    assert "314159265358" not in str(info.value)


# --------------------------------------------------------------------------- `personahub llm check`


def run_check(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PERSONAHUB_BACKOFF_BASE_S": "0.01", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "personahub.cli.app", "llm", "check", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--backend", "gemini"], "backend"),
        (["--base-url", "http://127.0.0.1:{port}/v1"], "cannot reach http://127.0.0.1:{port}/v1"),
        (["--model-path", "{missing}"], "local model file not found"),
    ],
    ids=["unknown-backend", "unreachable-base-url", "missing-model-file"],
)
def test_llm_check_fails_with_one_error_line(
    args: list[str], expected: str, workdir: Path, tmp_path: Path
) -> None:
    values = {"port": str(closed_port()), "missing": str(tmp_path / "absent.gguf")}
    args = [arg.format(**values) for arg in args]
    completed = run_check(*args, cwd=workdir)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 2, output
    error_lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, output
    assert expected.format(**values) in error_lines[0]
    assert "Traceback" not in output
