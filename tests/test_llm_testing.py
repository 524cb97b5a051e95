"""The in-process test doubles: FunctionBackend scripts replies and failures through the
whole gateway; TestBackend answers any schema validly and deterministically."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from personahub.llm import ConfigError, ErrorKind, LLMClient, LLMRequest, load_settings
from personahub.llm.backends import BackendCall
from personahub.llm.retry import TransportError
from personahub.llm.testing import FunctionBackend, TestBackend


class Pet(BaseModel):
    name: str = Field(max_length=40)
    legs: int = Field(ge=0, le=8)


@pytest.fixture
def settings(tmp_path):
    return load_settings(
        backend="test", cache=False, backoff_base_s=0, cache_path=tmp_path / "c.sqlite"
    )


def ask(seed: int = 1) -> LLMRequest[Pet]:
    return LLMRequest([{"role": "user", "content": "a pet"}], schema=Pet, seed=seed)


async def test_function_backend_failures_are_retried_and_metered(settings) -> None:
    failures = [TransportError(ErrorKind.RATE_LIMITED, "slow down")]

    def reply(call: BackendCall) -> str:
        if failures:
            raise failures.pop()
        return '{"name": "Rex", "legs": 4}'

    async with LLMClient(settings, backend=FunctionBackend(reply)) as client:
        result = await client.complete(ask())
        assert result.parsed == Pet(name="Rex", legs=4)
        assert result.retries == 1
        assert client.usage()["calls"] == 1


async def test_function_backend_reask_sees_the_bad_reply(settings) -> None:
    replies = iter(["not json", '{"name": "Tom", "legs": 4}'])
    backend = FunctionBackend(lambda call: next(replies))
    async with LLMClient(settings, backend=backend) as client:
        result = await client.complete(ask(seed=7))
    assert result.parsed is not None and result.parsed.name == "Tom"
    assert [c.seed for c in backend.calls] == [7, 8]
    assert backend.calls[1].messages[-2] == {"role": "assistant", "content": "not json"}


async def test_test_backend_answers_schemas_validly_and_deterministically(settings) -> None:
    async with LLMClient(settings) as client:
        assert isinstance(client.backend, TestBackend)
        first, again, other = await client.batch([ask(1), ask(1), ask(2)])
    assert first.parsed is not None and first.parsed == again.parsed
    assert other.parsed != first.parsed
    assert (await TestBackend().complete(_free_text())).text == "echo: hello"


def _free_text() -> BackendCall:
    return BackendCall([{"role": "user", "content": "hello"}], None, "", 0.0, 16, None)


def test_settings_accept_registered_backends_only() -> None:
    assert load_settings(backend="test").model_name == "test-model"
    with pytest.raises(ConfigError, match="backend"):
        load_settings(backend="nope")
