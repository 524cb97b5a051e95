"""Tests for the fake OpenAI server, driven through the real ``openai`` SDK."""

from __future__ import annotations

import json
import math
import socket
import time
from collections.abc import AsyncIterator, Iterator
from enum import StrEnum
from typing import Any, Literal

import openai
import pytest
from pydantic import BaseModel, Field

from personahub.llm.options import choice_hint
from personahub.llm.testing.fake_openai import (
    FakeOpenAIServer,
    generate_instance,
    spawn_server_process,
    stop_server_process,
)


class Mood(StrEnum):
    HAPPY = "happy"
    SAD = "sad"


class Post(BaseModel):
    title: str = Field(min_length=3, max_length=8)
    likes: int = Field(ge=5, le=10)
    score: float = Field(gt=0, lt=1)
    tags: list[str] = Field(min_length=2, max_length=4)


class Profile(BaseModel):
    name: str
    age: int = Field(gt=17)
    mood: Mood
    stance: Literal["agree", "disagree"]
    nickname: str | None = None
    friend: Profile | None = None
    posts: list[Post] = Field(min_length=1)
    scores: dict[str, float] = {}
    active: bool
    long_bio: str = Field(min_length=40)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        yield srv


@pytest.fixture
async def client(server: FakeOpenAIServer) -> AsyncIterator[openai.AsyncOpenAI]:
    server.reset()
    async with openai.AsyncOpenAI(
        base_url=server.base_url, api_key="test-key", max_retries=0
    ) as cli:
        yield cli


def _schema_format(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "type": "json_schema",
        "json_schema": {"name": model.__name__, "schema": model.model_json_schema()},
    }


async def _ask(client: openai.AsyncOpenAI, text: str = "hello there", **kwargs: Any) -> Any:
    return await client.chat.completions.create(
        model="m1", messages=[{"role": "user", "content": text}], **kwargs
    )


async def test_default_schema_instance_validates(
    client: openai.AsyncOpenAI, server: FakeOpenAIServer
) -> None:
    reply = await _ask(client, "make a profile", response_format=_schema_format(Profile))
    profile = Profile.model_validate_json(reply.choices[0].message.content)
    assert profile.posts and len(profile.posts[0].tags) == 2
    assert reply.model == "m1"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.prompt_tokens == 3
    assert reply.usage.completion_tokens >= 1
    assert server.requests[-1]["has_auth"] is True
    assert server.stats()["by_response_format"] == {"json_schema": 1}


async def test_json_object_with_schema(client: openai.AsyncOpenAI) -> None:
    fmt = {"type": "json_object", "schema": Post.model_json_schema()}
    reply = await _ask(client, response_format=fmt)
    Post.model_validate_json(reply.choices[0].message.content)


def test_generate_instance_edge_cases() -> None:
    assert generate_instance({"type": "array", "maxItems": 0}) == []
    assert generate_instance({"type": "integer", "exclusiveMinimum": 3}) == 4
    assert generate_instance({"type": "string", "maxLength": 3}) == "sam"
    values = generate_instance({"type": "array", "items": {"type": "string"}, "minItems": 3})
    assert len(set(values)) == 3


async def test_echo_without_schema(client: openai.AsyncOpenAI, server: FakeOpenAIServer) -> None:
    reply = await _ask(client, "x" * 100)
    assert reply.choices[0].message.content == "echo: " + "x" * 60
    assert server.stats()["by_status"] == {200: 1}


async def test_unscripted_schema_replies_vary_with_the_prompt(
    client: openai.AsyncOpenAI, server: FakeOpenAIServer
) -> None:
    fmt = _schema_format(Profile)
    first, again, other = [
        (await _ask(client, text, response_format=fmt, seed=1)).choices[0].message.content
        for text in ("make a profile", "make a profile", "make another profile")
    ]
    assert first == again  # deterministic in the prompt and seed
    assert Profile.model_validate_json(first).name != Profile.model_validate_json(other).name
    flags = set()
    for n in range(8):
        reply = await _ask(client, f"profile {n}", response_format=fmt)
        flags.add(Profile.model_validate_json(reply.choices[0].message.content).active)
    assert flags == {True, False}  # a flag is decided per prompt too
    server.configure(vary_strings=False)  # the schema's one deterministic instance
    plain = await _ask(client, "make a profile", response_format=fmt, seed=1)
    assert json.loads(plain.choices[0].message.content) == generate_instance(
        Profile.model_json_schema()
    )


async def test_an_unscripted_option_request_gets_the_listed_options_first_tokens(
    client: openai.AsyncOpenAI, server: FakeOpenAIServer
) -> None:
    labels = ["strongly agree", "agree", "disagree"]
    prompt = f"Do you agree?\n{choice_hint(labels)}\nReply with your answer only."
    kwargs: dict[str, Any] = {"max_tokens": 1, "logprobs": True, "top_logprobs": 20}
    reply = await _ask(client, prompt, **kwargs)
    first = reply.choices[0].logprobs.content[0]
    top = {entry.token: entry.logprob for entry in first.top_logprobs}
    # One token per distinct first word, a spread summing to 1, the top one as the reply.
    assert set(top) == {"strongly", "agree", "disagree"}
    assert sum(math.exp(lp) for lp in top.values()) == pytest.approx(1.0)
    assert reply.choices[0].message.content == first.token == max(top, key=lambda t: top[t])
    assert reply.usage.completion_tokens == 1
    spreads = set()
    for n in range(6):
        other = await _ask(client, f"Question {n}?\n{choice_hint(labels)}", **kwargs)
        spreads.add(tuple(e.logprob for e in other.choices[0].logprobs.content[0].top_logprobs))
    assert len(spreads) > 1  # the spread follows the prompt
    # A scripted first position still wins.
    server.configure(top_logprobs={"agree": 0.0})
    scripted = await _ask(client, prompt, **kwargs)
    assert [e.token for e in scripted.choices[0].logprobs.content[0].top_logprobs] == ["agree"]


async def test_rate_limit_with_retry_after(
    client: openai.AsyncOpenAI, server: FakeOpenAIServer
) -> None:
    server.configure(queue=[{"status": 429, "retry_after": "0.2"}])
    with pytest.raises(openai.RateLimitError) as info:
        await _ask(client)
    assert info.value.response.headers["retry-after"] == "0.2"
    # The queue is one-shot: the next request falls back to the default.
    assert (await _ask(client)).choices[0].message.content.startswith("echo:")
    assert server.stats()["by_status"] == {429: 1, 200: 1}


async def test_server_errors(client: openai.AsyncOpenAI, server: FakeOpenAIServer) -> None:
    server.enqueue({"status": 500}, {"status": 503}, {"status": 400, "message": "bad prompt"})
    with pytest.raises(openai.InternalServerError) as first:
        await _ask(client)
    assert first.value.status_code == 500
    with pytest.raises(openai.InternalServerError) as second:
        await _ask(client)
    assert second.value.status_code == 503
    with pytest.raises(openai.BadRequestError, match="bad prompt"):
        await _ask(client)


async def test_hang_times_out(client: openai.AsyncOpenAI, server: FakeOpenAIServer) -> None:
    server.enqueue({"hang": True})
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await _ask(client, timeout=0.3)
    assert time.monotonic() - started < 2
    assert server.stats()["hung"] == 1


async def test_broken_json(client: openai.AsyncOpenAI, server: FakeOpenAIServer) -> None:
    server.enqueue({"broken_json": True}, {"broken_json": True})
    for fmt in (None, _schema_format(Post)):
        kwargs = {"response_format": fmt} if fmt else {}
        content = (await _ask(client, **kwargs)).choices[0].message.content
        assert content.startswith("{")
        with pytest.raises(json.JSONDecodeError):
            json.loads(content)


async def test_literal_content_queue(client: openai.AsyncOpenAI, server: FakeOpenAIServer) -> None:
    server.enqueue({"content": "literal text"}, {"content": {"a": 1}})
    assert (await _ask(client)).choices[0].message.content == "literal text"
    assert json.loads((await _ask(client)).choices[0].message.content) == {"a": 1}


async def test_refuse_json_schema(client: openai.AsyncOpenAI, server: FakeOpenAIServer) -> None:
    server.configure(refuse_json_schema=True)
    with pytest.raises(openai.InternalServerError, match="json_schema") as info:
        await _ask(client, response_format=_schema_format(Post))
    assert info.value.body["param"] == "response_format"
    # json_object is still accepted unless refused separately.
    await _ask(client, response_format={"type": "json_object"})
    server.configure(refuse_json_object=True)
    with pytest.raises(openai.InternalServerError, match="json_object"):
        await _ask(client, response_format={"type": "json_object"})
    stats = server.stats()
    assert stats["by_status"] == {500: 2, 200: 1}
    assert stats["by_response_format"] == {"json_schema": 1, "json_object": 2}


async def test_rules(client: openai.AsyncOpenAI, server: FakeOpenAIServer) -> None:
    server.configure(
        rules=[
            {"match": r"weather.*today", "content": "sunny"},
            {"match": "vote", "content": {"choice": "yes"}},
        ]
    )
    assert (await _ask(client, "weather\nfor today?")).choices[0].message.content == "sunny"
    assert json.loads((await _ask(client, "please vote")).choices[0].message.content) == {
        "choice": "yes"
    }
    assert (await _ask(client, "other")).choices[0].message.content == "echo: other"


async def test_responder(client: openai.AsyncOpenAI, server: FakeOpenAIServer) -> None:
    def responder(body: dict[str, Any]) -> str | None:
        text = body["messages"][-1]["content"]
        return f"agent says {text}" if text.startswith("agent") else None

    server.configure(responder=responder)
    assert (await _ask(client, "agent-7")).choices[0].message.content == "agent says agent-7"
    assert (await _ask(client, "plain")).choices[0].message.content == "echo: plain"


async def test_models_and_reset(client: openai.AsyncOpenAI, server: FakeOpenAIServer) -> None:
    server.configure(models=["a", "b"], latency_ms=1)
    assert [m.id for m in (await client.models.list()).data] == ["a", "b"]
    await _ask(client)
    server.reset()
    assert server.stats()["total"] == 0 and server.requests == []
    assert server.configure()["latency_ms"] == 0


def test_unknown_config_key_rejected(server: FakeOpenAIServer) -> None:
    with pytest.raises(ValueError, match="unknown"):
        server.configure(latencyms=5)


async def test_spawned_process() -> None:
    process, base_url = spawn_server_process(latency_ms=1, refuse_json_object=True)
    try:
        remote = FakeOpenAIServer.attach(base_url)
        remote.enqueue({"status": 429, "retry_after": "1"})
        async with openai.AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0) as cli:
            with pytest.raises(openai.RateLimitError):
                await _ask(cli)
            with pytest.raises(openai.InternalServerError, match="json_object"):
                await _ask(cli, response_format={"type": "json_object"})
            reply = await _ask(cli, "hi")
        assert reply.choices[0].message.content == "echo: hi"
        assert remote.stats()["by_status"] == {429: 1, 500: 1, 200: 1}
        assert remote.requests[-1]["has_auth"] is True
        remote.reset()
        assert remote.stats()["total"] == 0
        # The initial config survives reset().
        assert remote.configure()["refuse_json_object"] is True
    finally:
        assert stop_server_process(process) == 0
    port = int(base_url.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
