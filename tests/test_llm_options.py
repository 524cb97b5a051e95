"""Option requests through the gateway: a distribution over option labels (issue 12 item 3)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from personahub.llm import LLMClient, LLMRequest, load_settings
from personahub.llm.backends import BackendCall
from personahub.llm.options import (
    choice_hint,
    hinted_labels,
    match_top_tokens,
    normalise,
    scale_hint,
)
from personahub.llm.testing import FunctionBackend
from tests.support.fake_openai import FakeOpenAIServer

MESSAGES = [{"role": "user", "content": "Would you subscribe? Answer with yes, no or undecided."}]
LABELS = ("yes", "no", "undecided")


def openai_client(server: FakeOpenAIServer, tmp_path: Path, **overrides: Any) -> LLMClient:
    settings = load_settings(
        backend="openai",
        base_urls=[server.base_url],
        cache_path=tmp_path / "cache.sqlite",
        max_retries=0,
        **overrides,
    )
    return LLMClient(settings)


def test_top_tokens_map_onto_labels_by_prefix_ignoring_case_and_spaces() -> None:
    top = [("Yes", math.log(0.5)), (" no", math.log(0.2)), ("und", math.log(0.1)), ("{", -1.0)]
    probs = match_top_tokens(top, LABELS)
    assert probs == pytest.approx({"yes": 0.5 / 0.8, "no": 0.2 / 0.8, "undecided": 0.1 / 0.8})
    # A token starting several labels is shared; one that is a label counts for it alone.
    shared = match_top_tokens([("strongly", 0.0)], ("strongly agree", "strongly disagree"))
    assert shared == {"strongly agree": 0.5, "strongly disagree": 0.5}
    assert match_top_tokens([("1", 0.0)], ("1", "10", "11")) == {"1": 1.0, "10": 0.0, "11": 0.0}
    assert match_top_tokens([("{", 0.0), (" ", -1.0)], LABELS) is None
    assert normalise({"yes": 0.0}, LABELS) is None


def test_the_labels_a_hint_lists_are_read_back() -> None:
    for labels in (("yes", "no"), ("yes, for him", "no, against him"), ("4 nights", "Never")):
        prompt = f"Question: which?\n{choice_hint(labels)}\nReply with your answer only."
        assert hinted_labels(prompt) == labels
    assert hinted_labels(scale_hint(5, "not (at) all", "very")) == ("1", "2", "3", "4", "5")
    # The last listed question counts; a prompt listing none has no labels.
    assert hinted_labels(f"{choice_hint(['a', 'b'])}\n{scale_hint(3, 'lo', 'hi')}") == (
        "1",
        "2",
        "3",
    )
    assert hinted_labels(MESSAGES[0]["content"]) is None


async def test_an_unscripted_fixture_scores_the_options_a_prompt_lists(tmp_path: Path) -> None:
    def ask(question: str) -> LLMRequest[Any]:
        content = f"{question}\n{choice_hint(LABELS)}\nReply with your answer only."
        return LLMRequest(messages=[{"role": "user", "content": content}], options=LABELS, seed=3)

    with FakeOpenAIServer() as server:
        async with openai_client(server, tmp_path, cache=False) as client:
            results = [
                await client.complete(ask(f"Would you subscribe at ${p}?")) for p in range(6)
            ]
            again = await client.complete(ask("Would you subscribe at $0?"))
        sent = len(server.requests)
    assert sent == 7  # one token-probability request each, no sampled fallback
    for result in results:
        assert result.distribution is not None and result.distribution.method == "logprobs"
        assert all(p > 0 for p in result.distribution.probs.values())
    assert again.distribution == results[0].distribution
    assert len({tuple(r.distribution.probs.values()) for r in results if r.distribution}) > 1


async def test_logprobs_from_the_fixture_server(tmp_path: Path) -> None:
    top = {"Yes": math.log(0.6), "no": math.log(0.3), "undec": math.log(0.1), '"': -0.1}
    with FakeOpenAIServer(top_logprobs=top) as server:
        async with openai_client(server, tmp_path) as client:
            result = await client.complete(LLMRequest(messages=MESSAGES, options=LABELS, seed=3))
            again = await client.complete(LLMRequest(messages=MESSAGES, options=LABELS, seed=3))
        body = server.requests[0]
    assert result.ok and result.distribution is not None
    assert result.distribution.method == "logprobs"
    assert result.distribution.probs == pytest.approx({"yes": 0.6, "no": 0.3, "undecided": 0.1})
    assert json.loads(result.text)["probs"] == result.distribution.probs
    assert (body["max_tokens"], body["logprobs"], body["top_logprobs"]) == (1, True, 20)
    assert "response_format" not in body
    # The cache keeps option replies like any other (keyed on the options).
    assert again.cached and again.distribution == result.distribution
    assert len(server.requests) == 1


async def test_a_server_without_logprobs_is_sampled_k_times(tmp_path: Path) -> None:
    answers = iter(["yes", "no", "yes", "undecided", "yes", "no", "yes", "yes"])

    def responder(body: dict[str, Any]) -> Any:
        return {"answer": next(answers)} if body.get("response_format") else None

    with FakeOpenAIServer(logprobs=False, responder=responder) as server:
        async with openai_client(server, tmp_path, option_samples=4, cache=False) as client:
            first = await client.complete(LLMRequest(messages=MESSAGES, options=LABELS, seed=7))
            second = await client.complete(LLMRequest(messages=MESSAGES, options=LABELS, seed=8))
            usage = client.usage()
        bodies = server.requests
    assert first.distribution is not None and second.distribution is not None
    assert (first.distribution.method, first.distribution.samples) == ("samples", 4)
    assert sorted(first.distribution.probs.values()) == [0.25, 0.25, 0.5]
    assert second.distribution.probs == {"yes": 0.75, "no": 0.25, "undecided": 0.0}
    # One logprobs attempt; then the server is known to give none and only samples go out,
    # each with its own seed and an enum of the labels.
    assert [b.get("logprobs", False) for b in bodies] == [True] + [False] * 8
    schema = bodies[1]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["answer"]["enum"] == list(LABELS)
    assert [b["seed"] for b in bodies[1:5]] == [7, 8, 9, 10]
    assert usage["calls"] == 2  # a sampled option request is metered as one request


async def test_a_backend_that_cannot_score_options_is_sampled() -> None:
    def reply(call: BackendCall) -> str:
        assert call.schema is not None and call.options is None
        return json.dumps({"answer": "no" if (call.seed or 0) % 2 else "yes"})

    settings = load_settings(backend="openai", cache=False, option_samples=6)
    backend = FunctionBackend(reply, option_logprobs=False)
    async with LLMClient(settings, backend=backend) as client:
        result = await client.complete(LLMRequest(messages=MESSAGES, options=LABELS, seed=0))
    assert result.distribution is not None
    assert result.distribution.probs == {"yes": 0.5, "no": 0.5, "undecided": 0.0}
    assert len(backend.calls) == 6


async def test_function_backend_weights_are_normalised() -> None:
    backend = FunctionBackend(lambda call: {"yes": 3.0, "no": 1.0})
    async with LLMClient(load_settings(backend="openai", cache=False), backend=backend) as client:
        result = await client.complete(LLMRequest(messages=MESSAGES, options=LABELS))
    assert result.distribution is not None
    assert result.distribution.probs == {"yes": 0.75, "no": 0.25, "undecided": 0.0}


@pytest.mark.slow
async def test_embedded_model_scores_option_labels() -> None:
    pytest.importorskip("llama_cpp")
    settings = load_settings(backend="local", cache=False)
    system = {"role": "system", "content": "You are a retired farmer who distrusts politicians."}
    ask = (
        "Public transport should be free. "
        "Answer with a whole number from 1 (strongly disagree) to 5 (strongly agree)."
    )
    likert = [system, {"role": "user", "content": ask}]
    points = ("1", "2", "3", "4", "5")
    async with LLMClient(settings) as client:
        choice = await client.complete(LLMRequest(messages=[system, *MESSAGES], options=LABELS))
        scale = await client.complete(LLMRequest(messages=likert, options=points))
        again = await client.complete(LLMRequest(messages=likert, options=points))
    for result, labels in ((choice, LABELS), (scale, points)):
        assert result.ok and result.distribution is not None
        assert result.distribution.method == "logprobs"
        assert list(result.distribution.probs) == list(labels)
        assert sum(result.distribution.probs.values()) == pytest.approx(1.0)
        assert result.usage.prompt_tokens > 20
    # Scores are read from the logits, not sampled: the same prompt scores the same.
    assert again.distribution is not None and scale.distribution is not None
    assert again.distribution.probs == pytest.approx(scale.distribution.probs)
