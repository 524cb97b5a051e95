"""Shared test fixtures: an isolated environment, the fake OpenAI server and gateway settings.

Every test runs with ``XDG_CACHE_HOME`` pointing at a temporary folder and without any
``PERSONAHUB_*``, ``OPENAI_*`` or proxy variables, so the developer's own configuration (a real
API key, a remote base URL, a proxy) can never leak into a test or be sent anywhere.

Database tests take ``db_url``: once with a SQLite file and once with a fresh PostgreSQL
database on the server named by ``PERSONAHUB_TEST_POSTGRES_URL`` (``make test`` starts one with
scripts/postgres.sh). Without that variable the PostgreSQL cases skip, except under CI
(``CI=true``), where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, make_url, text

from personahub.llm import LLMSettings, load_settings
from tests.support.fake_openai import FakeOpenAIServer

POSTGRES_URL_VARIABLE = "PERSONAHUB_TEST_POSTGRES_URL"
# Read at import: the autouse fixture below clears PERSONAHUB_* variables before each test.
POSTGRES_URL = os.environ.get(POSTGRES_URL_VARIABLE, "")

TEST_API_KEY = "sk-test-0123456789abcdef"
"""The API key the settings factory uses unless told otherwise."""

_LEAKY_PREFIXES = ("PERSONAHUB_", "OPENAI_")
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: Any) -> None:
    """Clear the user's gateway, OpenAI and proxy settings; use a private cache folder."""
    for name in list(os.environ):
        upper = name.upper()
        if upper.startswith(_LEAKY_PREFIXES) or upper in _PROXY_VARIABLES:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


@pytest.fixture
def fake_server() -> Iterator[FakeOpenAIServer]:
    """A fresh in-thread OpenAI-compatible server without artificial latency."""
    with FakeOpenAIServer(latency_ms=0) as server:
        yield server


SettingsFactory = Callable[..., LLMSettings]


@pytest.fixture
def llm_settings_factory(tmp_path: Path) -> SettingsFactory:
    """Build gateway settings suited to tests; keyword arguments override any field.

    Defaults: the response cache lives in ``tmp_path``, backoff is tiny (10 ms base, 50 ms
    cap), the timeout is short, and the API key is :data:`TEST_API_KEY`. Passing
    ``base_url`` or ``base_urls`` selects the ``openai`` backend unless ``backend`` is given.
    """

    def make(**overrides: Any) -> LLMSettings:
        values: dict[str, Any] = {
            "cache_path": tmp_path / "llm-cache.sqlite",
            "backoff_base_s": 0.01,
            "backoff_max_s": 0.05,
            "timeout_s": 5.0,
            "max_retries": 3,
            "api_key": TEST_API_KEY,
        }
        if "base_url" in overrides or "base_urls" in overrides:
            values["backend"] = "openai"
        values.update(overrides)
        return load_settings(**values)

    return make


def require_postgres() -> str:
    """The test server's URL; skips the test without one (fails under ``CI=true``)."""
    if not POSTGRES_URL:
        reason = f"{POSTGRES_URL_VARIABLE} is not set (scripts/postgres.sh starts a server)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL tests must run under CI: {reason}")
        pytest.skip(reason)
    return POSTGRES_URL


@pytest.fixture(scope="session")
def _postgres_admin() -> Iterator[Engine]:
    # CREATE/DROP DATABASE cannot run inside a transaction.
    engine = create_engine(require_postgres(), isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_url(_postgres_admin: Engine) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    with _postgres_admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_URL).set(database=name)
    yield url.render_as_string(hide_password=False)
    with _postgres_admin.connect() as connection:
        # FORCE: a store or run database the test left open must not keep it alive.
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database for one test: a SQLite file path, then a fresh PostgreSQL database URL."""
    if request.param == "sqlite":
        return str(tmp_path / "test.db")
    return request.getfixturevalue("postgres_url")
