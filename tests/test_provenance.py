"""Issue 18 items 1-2: provenance names the model that answered, and the structured-output
fallback on a llama.cpp-like server loses no answers (mode learned once, ranges enforced,
re-asks name the violation)."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import BaseModel, Field
from typer.testing import CliRunner

from personahub.cli.app import app as personahub_app
from personahub.llm import ConfigError, LLMClient, LLMRequest, LLMSettings
from personahub.llm.backends import LOCAL_MODEL_NAME
from personahub.llm.backends.local import LocalBackend, find_packaged_model
from sandbox.run_options import RunOptions
from sandbox.rundb import RunDatabase
from sandbox.runner import start_run
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.runs import DEFAULT_SCENARIO, personas

LIKERT = '  - {id: price_ok, type: likert, ask: "Is the price reasonable?", scale: 5}\n'


class Rating(BaseModel):
    """A 1-5 answer, as a scenario's Likert question asks for."""

    price_fair: int = Field(ge=1, le=5)


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# --------------------------------------------------------------------------- item 1


async def test_preflight_records_the_model_the_server_serves(
    fake_server: FakeOpenAIServer, llm_settings_factory: Callable[..., LLMSettings]
) -> None:
    fake_server.configure(models=["qwen2.5-7b-instruct"])
    async with LLMClient(llm_settings_factory(base_url=fake_server.base_url)) as client:
        await client.preflight()
        result = await client.complete(LLMRequest(user("hi")))
    assert client.model == result.model == "qwen2.5-7b-instruct"
    assert client.settings.recorded()["model"] == "qwen2.5-7b-instruct"
    assert client.describe()["model"] == "qwen2.5-7b-instruct"
    assert fake_server.requests[-1]["model"] == "qwen2.5-7b-instruct"


async def test_several_models_and_no_model_fail_with_one_line_listing_them(
    fake_server: FakeOpenAIServer, llm_settings_factory: Callable[..., LLMSettings]
) -> None:
    fake_server.configure(models=["model-a", "model-b"])
    async with LLMClient(llm_settings_factory(base_url=fake_server.base_url)) as client:
        with pytest.raises(ConfigError) as caught:
            await client.preflight()
    message = str(caught.value)
    assert "\n" not in message
    assert "model-a" in message and "model-b" in message and "--model" in message


async def test_a_chosen_model_is_kept(
    fake_server: FakeOpenAIServer, llm_settings_factory: Callable[..., LLMSettings]
) -> None:
    fake_server.configure(models=["model-a", "model-b"])
    settings = llm_settings_factory(base_url=fake_server.base_url, model="model-b")
    async with LLMClient(settings) as client:
        await client.preflight()
    assert client.model == "model-b"


def test_llm_check_names_the_served_model() -> None:
    with FakeOpenAIServer(models=["served-by-the-server"]) as server:
        result = CliRunner().invoke(personahub_app, ["llm", "check", "--base-url", server.base_url])
    assert result.exit_code == 0, result.output
    assert "served-by-the-server" in result.output
    assert "gpt-4o-mini" not in result.output


def test_a_run_header_names_the_served_model(tmp_path: Path) -> None:
    (tmp_path / "people.jsonl").write_text("\n".join(json.dumps(p) for p in personas()) + "\n")
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(DEFAULT_SCENARIO.replace(LIKERT, ""))
    with FakeOpenAIServer(models=["served-model"]) as server:
        cli = {"base_urls": [server.base_url], "backend": "openai", "cache": False}
        options = RunOptions(out=tmp_path / "runs", steps=1, agents=3)
        outcome = start_run(scenario, options, cli, show_progress=False)
    database = RunDatabase(outcome.database)
    run = database.run()
    assert run is not None
    assert run.model == run.llm_config["model"] == "served-model"
    database.close()


def _gguf(path: Path, name: str) -> Path:
    """A GGUF v3 header with ``general.architecture`` and ``general.name`` (no tensors)."""

    def text(value: str) -> bytes:
        data = value.encode()
        return struct.pack("<Q", len(data)) + data

    body = b"GGUF" + struct.pack("<IQQ", 3, 0, 2)
    body += text("general.architecture") + struct.pack("<I", 8) + text("llama")
    body += text("general.name") + struct.pack("<I", 8) + text(name)
    path.write_bytes(body)
    return path


def test_the_local_backend_records_the_gguf_name(tmp_path: Path) -> None:
    path = _gguf(tmp_path / "other.gguf", "Qwen2.5 0.5B Instruct")
    backend = LocalBackend(LLMSettings(model_path=path))
    assert backend.model == "Qwen2.5 0.5B Instruct"
    unnamed = tmp_path / "unnamed.gguf"
    unnamed.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 0))
    assert LocalBackend(LLMSettings(model_path=unnamed)).model == "unnamed"
    if find_packaged_model() is not None:
        assert LocalBackend(LLMSettings()).model == LOCAL_MODEL_NAME


# --------------------------------------------------------------------------- item 2


async def test_json_schema_is_refused_once_per_endpoint_not_once_per_request(
    fake_server: FakeOpenAIServer, llm_settings_factory: Callable[..., LLMSettings]
) -> None:
    fake_server.configure(refuse_json_schema=True, latency_ms=20)
    async with LLMClient(llm_settings_factory(base_url=fake_server.base_url)) as client:
        requests = [LLMRequest(user(f"p{i}"), schema=Rating) for i in range(7)]
        results = await client.batch(requests, concurrency=7)
    assert all(r.ok for r in results)
    assert fake_server.stats()["by_status"].get(500, 0) == 1
    assert fake_server.stats()["by_response_format"] == {"json_schema": 1, "json_object": 7}


async def test_json_object_mode_sends_integer_ranges_as_enums(
    fake_server: FakeOpenAIServer, llm_settings_factory: Callable[..., LLMSettings]
) -> None:
    fake_server.configure(refuse_json_schema=True)
    async with LLMClient(llm_settings_factory(base_url=fake_server.base_url)) as client:
        assert (await client.complete(LLMRequest(user("rate"), schema=Rating))).ok
    sent = fake_server.requests[-1]["response_format"]
    assert sent["type"] == "json_object"
    assert sent["schema"]["properties"]["price_fair"]["enum"] == [1, 2, 3, 4, 5]


async def test_a_reask_names_the_field_the_range_and_the_value_found(
    fake_server: FakeOpenAIServer, llm_settings_factory: Callable[..., LLMSettings]
) -> None:
    fake_server.configure(queue=[{"content": {"price_fair": 102}}])
    async with LLMClient(llm_settings_factory(base_url=fake_server.base_url)) as client:
        result = await client.complete(LLMRequest(user("rate"), schema=Rating))
    assert result.ok and result.parsed is not None and 1 <= result.parsed.price_fair <= 5
    reask = fake_server.requests[-1]["messages"][-1]["content"]
    assert "price_fair" in reask and "1 to 5" in reask and "102" in reask


def test_a_damaged_gguf_header_names_no_model(tmp_path: Path) -> None:
    # A length field of garbage once asked for exabytes (MemoryError instead of "not a GGUF")
    from personahub.llm.backends.gguf_meta import gguf_string

    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF but not really a model" * 100)
    assert gguf_string(broken, "general.name") is None
