"""Shared test fixtures: an isolated environment, the fake OpenAI server and gateway settings.

Every test runs with ``XDG_CACHE_HOME`` pointing at a temporary folder and without any
``PERSONAHUB_*``, ``OPENAI_*`` or proxy variables, so the developer's own configuration (a real
API key, a remote base URL, a proxy) can never leak into a test or be sent anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from personahub.llm import LLMSettings, load_settings
from tests.support.fake_openai import FakeOpenAIServer

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
