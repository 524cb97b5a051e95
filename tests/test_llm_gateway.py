"""The LLM gateway's behaviour, driven through the real ``openai`` SDK and a real HTTP server.

Each wrapper of :class:`personahub.llm.LLMClient` is exercised against the fake
OpenAI-compatible server: retries, timeouts, connection errors, JSON repair and re-asking,
the structured-output fallback, the response cache, metering, the budget, batching, load
sharing across endpoints, and keeping the API key out of everything the gateway records.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from personahub.llm import ErrorKind, LLMCallError, LLMClient, LLMRequest, LLMSettings
from tests.support.fake_openai import FakeOpenAIServer

SECRET_KEY = "sk-live-SECRETabcdef0123456789"
REASK_MARKER = "could not be used"


class Person(BaseModel):
    """A small structured answer."""

    name: str = Field(max_length=40)
    age: int = Field(ge=0, le=120)
    tags: list[str] = Field(default_factory=list, max_length=5)


class Pet(BaseModel):
    """Another schema, to show the schema is part of the cache key."""

    name: str
    age: int


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def words(*texts: str) -> int:
    """Token count the fake server reports: whitespace-separated words."""
    return sum(len(text.split()) for text in texts)


def formats(server: FakeOpenAIServer) -> list[str]:
    """The ``response_format`` type of each request the server saw, in order."""
    out = []
    for body in server.requests:
        response_format = body.get("response_format")
        out.append(response_format["type"] if isinstance(response_format, dict) else "none")
    return out


@pytest.fixture
async def gateway(
    fake_server: FakeOpenAIServer, llm_settings_factory: Callable[..., LLMSettings]
) -> AsyncIterator[LLMClient]:
    """A gateway client on the fake server with test defaults."""
    async with LLMClient(llm_settings_factory(base_url=fake_server.base_url)) as client:
        yield client


@pytest.fixture
def second_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(latency_ms=0) as server:
        yield server


# --------------------------------------------------------------------------- basics


async def test_chat_returns_text_usage_and_endpoint(
    gateway: LLMClient, fake_server: FakeOpenAIServer
) -> None:
    result = await gateway.chat(user("hello there"))
    assert result.ok
    assert result.text == "echo: hello there"
    assert result.usage.prompt_tokens == 2
    assert result.usage.completion_tokens == 3
    assert result.endpoint == fake_server.base_url
    assert not result.cached
    assert fake_server.requests[0]["has_auth"]


async def test_structured_uses_json_schema_and_validates(
    gateway: LLMClient, fake_server: FakeOpenAIServer
) -> None:
    person = await gateway.structured(user("describe someone"), Person)
    assert isinstance(person, Person)
    body = fake_server.requests[0]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["name"] == "Person"
    assert body["response_format"]["json_schema"]["schema"]["properties"]["age"]["maximum"] == 120


async def test_single_call_helpers_raise_with_the_error_value(
    gateway: LLMClient, fake_server: FakeOpenAIServer
) -> None:
    fake_server.enqueue({"status": 400, "message": "bad parameter"})
    with pytest.raises(LLMCallError) as info:
        await gateway.chat(user("hi"))
    assert info.value.error.kind is ErrorKind.BAD_REQUEST
    assert "bad parameter" in str(info.value)


# --------------------------------------------------------------------------- retries


@pytest.mark.parametrize("header", ["retry_after", "retry_after_ms"])
async def test_429_is_retried_after_the_servers_retry_after(
    header: str,
    fake_server: FakeOpenAIServer,
    llm_settings_factory: Callable[..., LLMSettings],
) -> None:
    # The cap on any single wait must be above what the server asks for.
    settings = llm_settings_factory(base_url=fake_server.base_url, backoff_max_s=2.0)
    value = "0.3" if header == "retry_after" else "300"
    fake_server.enqueue({"status": 429, header: value})
    async with LLMClient(settings) as client:
        started = time.perf_counter()
        result = await client.complete(LLMRequest(user("hi")))
        elapsed = time.perf_counter() - started
    assert result.ok
    assert result.retries == 1
    assert elapsed >= 0.3
    assert fake_server.stats()["by_status"] == {429: 1, 200: 1}


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_retried(
    status: int, gateway: LLMClient, fake_server: FakeOpenAIServer
) -> None:
    fake_server.enqueue({"status": status}, {"status": status})
    result = await gateway.complete(LLMRequest(user("hi")))
    assert result.ok
    assert result.text == "echo: hi"
    assert result.retries == 2
    assert fake_server.stats()["total"] == 3


async def test_a_hung_request_times_out_and_the_retry_succeeds(
    fake_server: FakeOpenAIServer, llm_settings_factory: Callable[..., LLMSettings]
) -> None:
    fake_server.enqueue({"hang": True})
    settings = llm_settings_factory(base_url=fake_server.base_url, timeout_s=0.5)
    async with LLMClient(settings) as client:
        result = await client.complete(LLMRequest(user("hi")))
    assert result.ok
    assert result.retries == 1
    assert fake_server.stats()["hung"] == 1
    assert fake_server.stats()["total"] == 2


async def test_a_hung_request_that_keeps_hanging_is_a_timeout_error(
    fake_server: FakeOpenAIServer, llm_settings_factory: Callable[..., LLMSettings]
) -> None:
    fake_server.enqueue({"hang": True}, {"hang": True})
    settings = llm_settings_factory(base_url=fake_server.base_url, timeout_s=0.2, max_retries=1)
    async with LLMClient(settings) as client:
        result = await client.complete(LLMRequest(user("hi")))
    assert result.error is not None
    assert result.error.kind is ErrorKind.TIMEOUT
    assert result.error.attempts == 2
    assert fake_server.base_url in result.error.message


async def test_connection_refused_is_a_connection_error_naming_the_url(
    llm_settings_factory: Callable[..., LLMSettings],
) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    async with LLMClient(llm_settings_factory(base_url=url, max_retries=2)) as client:
        result = await client.complete(LLMRequest(user("hi")))
    assert result.error is not None
    assert result.error.kind is ErrorKind.CONNECTION
    assert url in result.error.message
    assert result.error.attempts == 3
    assert client.usage()["errors"] == {"connection": 1}


async def test_exhausted_retries_give_an_error_value_with_attempts(
    fake_server: FakeOpenAIServer, llm_settings_factory: Callable[..., LLMSettings]
) -> None:
    fake_server.enqueue(*[{"status": 500}] * 3)
    async with LLMClient(llm_settings_factory(base_url=fake_server.base_url, max_retries=2)) as c:
        result = await c.complete(LLMRequest(user("hi")))
    assert result.error is not None
    assert result.error.kind is ErrorKind.SERVER_ERROR
    assert result.error.attempts == 3
    assert "HTTP 500" in result.error.message
    assert fake_server.stats()["total"] == 3


@pytest.mark.parametrize(("status", "kind"), [(400, ErrorKind.BAD_REQUEST), (401, ErrorKind.AUTH)])
async def test_permanent_errors_are_not_retried(
    status: int, kind: ErrorKind, gateway: LLMClient, fake_server: FakeOpenAIServer
) -> None:
    fake_server.enqueue({"status": status})
    result = await gateway.complete(LLMRequest(user("hi")))
    assert result.error is not None
    assert result.error.kind is kind
    assert result.error.attempts == 1
    assert fake_server.stats()["total"] == 1


# --------------------------------------------------------------------------- repair and re-ask


@pytest.mark.parametrize(
    "content",
    [
        '```json\n{"name": "Ann", "age": 30, "tags": ["a"]}\n```',
        '{"name": "Ann", "age": 30, "tags": ["a", "b",],}',
        '{"name": "Ann", "age": 30, "tags": ["a", "b"',
        'Sure! Here it is: {"name": "Ann", "age": 30} Hope that helps.',
        '{"name": "Ann", "age": 30, "tags": ["line one\nline two"]}',
    ],
    ids=["code-fence", "trailing-commas", "truncated", "prose-around", "raw-newline"],
)
async def test_trivially_broken_json_is_repaired_without_a_reask(
    content: str, gateway: LLMClient, fake_server: FakeOpenAIServer
) -> None:
    fake_server.enqueue({"content": content})
    result = await gateway.complete(LLMRequest(user("describe"), schema=Person))
    assert result.ok, result.error
    assert result.parsed is not None
    assert (result.parsed.name, result.parsed.age) == ("Ann", 30)
    assert result.retries == 0
    assert fake_server.stats()["total"] == 1


@pytest.mark.parametrize(
    ("content", "problem"),
    [("I'd rather not say.", "not JSON"), ('{"name": "Ann", "age": 300}', "age")],
    ids=["not-json", "schema-violation"],
)
async def test_unusable_replies_are_reasked(
    content: str, problem: str, gateway: LLMClient, fake_server: FakeOpenAIServer
) -> None:
    fake_server.enqueue({"content": content})
    result = await gateway.complete(LLMRequest(user("describe"), schema=Person))
    assert result.ok, result.error
    assert isinstance(result.parsed, Person)
    assert result.retries == 1
    first, second = fake_server.requests
    assert len(second["messages"]) == len(first["messages"]) + 2
    assistant, reask = second["messages"][-2:]
    assert assistant == {"role": "assistant", "content": content}
    assert reask["role"] == "user"
    assert REASK_MARKER in reask["content"]
    assert problem in reask["content"]
    assert result.usage.prompt_tokens == words(
        *(m["content"] for m in first["messages"]), *(m["content"] for m in second["messages"])
    )


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        ("no JSON here", ErrorKind.INVALID_JSON),
        ('{"name": "Ann", "age": -4}', ErrorKind.SCHEMA_VIOLATION),
    ],
)
async def test_final_repair_failure_names_its_cause(
    content: str,
    kind: ErrorKind,
    fake_server: FakeOpenAIServer,
    llm_settings_factory: Callable[..., LLMSettings],
) -> None:
    fake_server.enqueue({"content": content}, {"content": content})
    settings = llm_settings_factory(base_url=fake_server.base_url, max_reasks=1)
    async with LLMClient(settings) as client:
        result = await client.complete(LLMRequest(user("describe"), schema=Person))
        with pytest.raises(LLMCallError):
            fake_server.enqueue({"content": content}, {"content": content})
            await client.structured(user("describe again"), Person)
    assert result.error is not None
    assert result.error.kind is kind
    assert result.error.attempts == 2
    assert result.text == content
    assert "after 2 attempts" in result.error.message
    assert fake_server.stats()["total"] == 4


# --------------------------------------------------------------------------- structured fallback


async def test_json_schema_refusal_falls_back_to_json_object_and_is_remembered(
    gateway: LLMClient, fake_server: FakeOpenAIServer
) -> None:
    fake_server.configure(refuse_json_schema=True)
    first = await gateway.complete(LLMRequest(user("one"), schema=Person))
    assert first.ok, first.error
    assert formats(fake_server) == ["json_schema", "json_object"]
    assert gateway.backend.modes() == {fake_server.base_url: "json_object"}
    # The schema rides along as instructions in json_object mode.
    assert "JSON schema" in first.messages[0]["content"]

    second = await gateway.complete(LLMRequest(user("two"), schema=Person))
    assert second.ok
    assert formats(fake_server) == ["json_schema", "json_object", "json_object"]


async def test_fallback_goes_on_to_the_prompt_mode(
    gateway: LLMClient, fake_server: FakeOpenAIServer
) -> None:
    fake_server.configure(
        refuse_json_schema=True,
        refuse_json_object=True,
        rules=[{"match": "JSON schema", "content": {"name": "Bo", "age": 7}}],
    )
    first = await gateway.structured(user("one"), Person)
    second = await gateway.structured(user("two"), Person)
    assert first == second == Person(name="Bo", age=7)
    assert formats(fake_server) == ["json_schema", "json_object", "none", "none"]
    assert gateway.backend.modes() == {fake_server.base_url: "prompt"}
    sent = fake_server.requests[-1]["messages"]
    assert sent[0]["role"] == "system"
    assert '"maximum": 120' in sent[0]["content"]
    assert sent[1] == user("two")[0]


async def test_fallback_is_remembered_per_endpoint(
    fake_server: FakeOpenAIServer,
    second_server: FakeOpenAIServer,
    llm_settings_factory: Callable[..., LLMSettings],
) -> None:
    fake_server.configure(refuse_json_schema=True, latency_ms=20)
    second_server.configure(latency_ms=20)
    urls = [fake_server.base_url, second_server.base_url]
    async with LLMClient(llm_settings_factory(base_urls=urls)) as client:
        requests = [LLMRequest(user(f"p{i}"), schema=Person) for i in range(8)]
        results = await client.batch(requests, concurrency=4)
        assert all(r.ok for r in results)
        assert client.backend.modes() == {urls[0]: "json_object", urls[1]: "json_schema"}
    assert set(formats(second_server)) == {"json_schema"}
    assert formats(fake_server).count("json_schema") >= 1


# --------------------------------------------------------------------------- cache


async def test_identical_request_is_served_from_the_cache(
    gateway: LLMClient, fake_server: FakeOpenAIServer
) -> None:
    request = LLMRequest(user("describe"), schema=Person, seed=3)
    first = await gateway.complete(request)
    second = await gateway.complete(request)
    assert first.ok and second.ok
    assert second.cached and not first.cached
    assert second.parsed == first.parsed
    assert second.text == first.text
    assert second.usage == first.usage
    assert fake_server.stats()["total"] == 1
    usage = gateway.usage()
    assert (usage["cache_hits"], usage["cache_misses"], usage["calls"]) == (1, 1, 1)


@pytest.mark.parametrize(
    "change",
    [{"sample_index": 1}, {"seed": 8}, {"schema": Pet}, {"temperature": 0.1}, {"max_tokens": 9}],
    ids=lambda change: next(iter(change)),
)
async def test_any_defining_difference_misses_the_cache(
    change: dict[str, Any], gateway: LLMClient, fake_server: FakeOpenAIServer
) -> None:
    base: dict[str, Any] = {"schema": Person, "seed": 7, "temperature": 0.5}
    await gateway.complete(LLMRequest(user("describe"), **base))
    result = await gateway.complete(LLMRequest(user("describe"), **{**base, **change}))
    assert result.ok and not result.cached
    assert fake_server.stats()["total"] == 2
    assert gateway.usage()["cache_misses"] == 2


async def test_the_cache_survives_a_new_client(
    fake_server: FakeOpenAIServer, llm_settings_factory: Callable[..., LLMSettings]
) -> None:
    settings = llm_settings_factory(base_url=fake_server.base_url)
    async with LLMClient(settings) as client:
        first = await client.complete(LLMRequest(user("remember me"), schema=Person))
    async with LLMClient(settings) as client:
        again = await client.complete(LLMRequest(user("remember me"), schema=Person))
        assert client.usage()["cache_hits"] == 1
    assert again.cached
    assert again.parsed == first.parsed
    assert fake_server.stats()["total"] == 1


async def test_cache_off_always_calls_the_server(
    fake_server: FakeOpenAIServer, llm_settings_factory: Callable[..., LLMSettings]
) -> None:
    settings = llm_settings_factory(base_url=fake_server.base_url, cache=False)
    async with LLMClient(settings) as client:
        for _ in range(2):
            assert not (await client.complete(LLMRequest(user("x")))).cached
    assert fake_server.stats()["total"] == 2
    assert not settings.cache_path.exists()


async def test_failures_are_not_cached(gateway: LLMClient, fake_server: FakeOpenAIServer) -> None:
    fake_server.enqueue({"status": 400})
    assert not (await gateway.complete(LLMRequest(user("x")))).ok
    result = await gateway.complete(LLMRequest(user("x")))
    assert result.ok and not result.cached


# --------------------------------------------------------------------------- metering and budget


async def test_metering_counts_tokens_calls_retries_and_cache_hits(
    gateway: LLMClient, fake_server: FakeOpenAIServer
) -> None:
    fake_server.enqueue({"status": 429, "retry_after": "0"})
    await gateway.complete(LLMRequest(user("one two three"), tag="t2p"))
    await gateway.complete(LLMRequest(user("four five")))
    await gateway.complete(LLMRequest(user("four five")))  # cached
    usage = gateway.usage()
    assert usage["calls"] == 2
    assert usage["retries"] == 1
    assert usage["cache_hits"] == 1
    assert usage["cache_misses"] == 2
    assert usage["prompt_tokens"] == words("one two three", "four five")
    assert usage["completion_tokens"] == words("echo: one two three", "echo: four five")
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["per_endpoint"][fake_server.base_url]["calls"] == 2
    assert usage["errors"] == {}


async def test_call_budget_stops_new_calls_but_serves_the_cache(
    fake_server: FakeOpenAIServer, llm_settings_factory: Callable[..., LLMSettings]
) -> None:
    settings = llm_settings_factory(base_url=fake_server.base_url, max_calls=2)
    async with LLMClient(settings) as client:
        assert (await client.complete(LLMRequest(user("a")))).ok
        assert (await client.complete(LLMRequest(user("b")))).ok
        refused = await client.complete(LLMRequest(user("c")))
        cached = await client.complete(LLMRequest(user("a")))
        with pytest.raises(LLMCallError, match="budget_exhausted"):
            await client.chat(user("d"))
    assert refused.error is not None
    assert refused.error.kind is ErrorKind.BUDGET_EXHAUSTED
    assert "max_calls=2" in refused.error.message
    assert cached.ok and cached.cached
    assert fake_server.stats()["total"] == 2


async def test_token_budget_stops_new_calls(
    fake_server: FakeOpenAIServer, llm_settings_factory: Callable[..., LLMSettings]
) -> None:
    settings = llm_settings_factory(base_url=fake_server.base_url, max_total_tokens=5)
    async with LLMClient(settings) as client:
        first = await client.complete(LLMRequest(user("one two three four")))
        refused = await client.complete(LLMRequest(user("five")))
        cached = await client.complete(LLMRequest(user("one two three four")))
    assert first.ok and first.usage.total_tokens > 5
    assert refused.error is not None
    assert refused.error.kind is ErrorKind.BUDGET_EXHAUSTED
    assert "max_total_tokens=5" in refused.error.message
    assert cached.ok and cached.cached
    assert fake_server.stats()["total"] == 1


# --------------------------------------------------------------------------- batch


async def test_batch_keeps_input_order_with_per_request_errors(
    gateway: LLMClient, fake_server: FakeOpenAIServer
) -> None:
    def responder(body: dict[str, Any]) -> str | None:
        return "not json at all" if "bad" in body["messages"][0]["content"] else None

    fake_server.configure(responder=responder, latency_ms=5)
    requests = [
        LLMRequest(user(f"bad {i}"), schema=Person) if i % 4 == 3 else LLMRequest(user(f"p {i}"))
        for i in range(16)
    ]
    finished: list[int] = []
    results = await gateway.batch(
        requests, concurrency=5, on_result=lambda index, _: finished.append(index)
    )
    assert sorted(finished) == list(range(16))
    for i, result in enumerate(results):
        if i % 4 == 3:
            assert result.error is not None
            assert result.error.kind is ErrorKind.INVALID_JSON
        else:
            assert result.ok
            assert result.text == f"echo: p {i}"


async def test_batch_respects_the_concurrency_limit(
    gateway: LLMClient, fake_server: FakeOpenAIServer
) -> None:
    latency = 0.1
    answered: list[float] = []

    def responder(body: dict[str, Any]) -> None:
        answered.append(time.monotonic())  # called once the request's latency has passed

    fake_server.configure(responder=responder, latency_ms=latency * 1000)
    results = await gateway.batch([LLMRequest(user(f"p {i}")) for i in range(16)], concurrency=4)
    assert all(r.ok for r in results)
    # Each request was inside the server at least during [answered - latency, answered].
    most = max(sum(1 for t in answered if s - latency < t <= s) for s in answered)
    assert most == 4


async def test_batch_defaults_to_the_configured_concurrency(
    fake_server: FakeOpenAIServer, llm_settings_factory: Callable[..., LLMSettings]
) -> None:
    latency = 0.1
    answered: list[float] = []
    fake_server.configure(
        responder=lambda body: answered.append(time.monotonic()), latency_ms=latency * 1000
    )
    settings = llm_settings_factory(base_url=fake_server.base_url, concurrency=3)
    async with LLMClient(settings) as client:
        await client.batch([LLMRequest(user(f"p {i}")) for i in range(12)])
    most = max(sum(1 for t in answered if s - latency < t <= s) for s in answered)
    assert most == 3


async def test_batch_with_a_budget_refuses_the_overflow(
    fake_server: FakeOpenAIServer, llm_settings_factory: Callable[..., LLMSettings]
) -> None:
    settings = llm_settings_factory(base_url=fake_server.base_url, max_calls=3)
    async with LLMClient(settings) as client:
        results = await client.batch([LLMRequest(user(f"p {i}")) for i in range(6)], concurrency=1)
    assert [r.ok for r in results] == [True, True, True, False, False, False]
    assert {r.error.kind for r in results if r.error} == {ErrorKind.BUDGET_EXHAUSTED}


async def test_call_budget_is_exact_with_many_calls_in_flight(
    fake_server: FakeOpenAIServer, llm_settings_factory: Callable[..., LLMSettings]
) -> None:
    # Issue 17, item 19: every call of a batch used to pass the check before the first one
    # finished, so a budget of 3 let 8 calls through.
    fake_server.configure(latency_ms=30)
    settings = llm_settings_factory(base_url=fake_server.base_url, max_calls=3)
    async with LLMClient(settings) as client:
        results = await client.batch([LLMRequest(user(f"p {i}")) for i in range(8)], concurrency=8)
        assert client.usage()["calls"] == 3
    assert sum(r.ok for r in results) == 3
    assert fake_server.stats()["total"] == 3


def test_a_ray_budget_states_its_bound() -> None:
    # Issue 17, item 19: with --engine ray each worker has its own budget; the summary says
    # how far the whole run may go.
    from personahub.distributed.usage import budget_bound

    assert budget_bound(None, None, 4) is None
    text = budget_bound(100, None, 4)
    assert text is not None and "per Ray worker" in text and "400 calls" in text
    assert "8,000 tokens" in (budget_bound(None, 2000, 4) or "")


# --------------------------------------------------------------------------- several endpoints


async def test_endpoints_share_the_load(
    fake_server: FakeOpenAIServer,
    second_server: FakeOpenAIServer,
    llm_settings_factory: Callable[..., LLMSettings],
) -> None:
    for server in (fake_server, second_server):
        server.configure(latency_ms=30)
    urls = [fake_server.base_url, second_server.base_url]
    async with LLMClient(llm_settings_factory(base_urls=urls)) as client:
        results = await client.batch([LLMRequest(user(f"p {i}")) for i in range(20)], concurrency=8)
        per_endpoint = client.usage()["per_endpoint"]
    assert all(r.ok for r in results)
    served = [fake_server.stats()["total"], second_server.stats()["total"]]
    assert sum(served) == 20
    assert min(served) >= 7
    assert {url: int(per_endpoint[url]["calls"]) for url in urls} == dict(
        zip(urls, served, strict=True)
    )


async def test_a_dead_endpoints_calls_move_to_the_live_one(
    fake_server: FakeOpenAIServer, llm_settings_factory: Callable[..., LLMSettings]
) -> None:
    fake_server.configure(latency_ms=10)
    dead = f"http://127.0.0.1:{free_port()}/v1"
    settings = llm_settings_factory(base_urls=[dead, fake_server.base_url])
    async with LLMClient(settings) as client:
        results = await client.batch([LLMRequest(user(f"p {i}")) for i in range(12)], concurrency=4)
    assert all(r.ok for r in results), [r.error for r in results if r.error]
    assert {r.endpoint for r in results} == {fake_server.base_url}
    assert fake_server.stats()["total"] == 12
    assert client.backend.failovers >= 1


# --------------------------------------------------------------------------- secrets


async def test_the_api_key_never_leaks(
    fake_server: FakeOpenAIServer,
    llm_settings_factory: Callable[..., LLMSettings],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = llm_settings_factory(base_url=fake_server.base_url, api_key=SECRET_KEY)
    leaky = f"Incorrect API key provided: {SECRET_KEY}"
    fake_server.enqueue({"status": 500, "message": leaky}, {"status": 401, "message": leaky})
    async with LLMClient(settings) as client:
        failed = await client.complete(LLMRequest(user("hi")))
        ok = await client.complete(LLMRequest(user("hello"), schema=Person))
        cached = await client.complete(LLMRequest(user("hello"), schema=Person))
        described = repr(client.describe()) + repr(settings) + str(settings.describe())
    assert fake_server.requests[0]["has_auth"]
    assert failed.error is not None
    assert failed.error.kind is ErrorKind.AUTH
    assert SECRET_KEY not in str(failed.error)
    assert "***" in failed.error.message
    assert ok.ok and cached.cached
    assert "retrying" in caplog.text  # the 500 was logged, scrubbed
    assert SECRET_KEY not in caplog.text
    assert SECRET_KEY not in described
    assert "api_key" in client.describe()
    cache_files = list(settings.cache_path.parent.glob(settings.cache_path.name + "*"))
    assert cache_files
    for path in cache_files:
        assert SECRET_KEY.encode() not in path.read_bytes()
