"""Option scoring on the embedded model (``personahub.llm.backends.local_scoring``): labels that
share their first tokens are scored as exactly as a fresh evaluation per token would, and a
survey's option requests evaluate little more than each respondent's persona and question."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from personahub.llm.backends.local_scoring import label_logprobs, prompt_tokens, spellings
from personahub.llm.settings import load_settings
from sandbox.forecast.agent import Observation
from sandbox.forecast.answer_modes import option_request
from sandbox.forecast.scenario import ChoiceQuestion

pytestmark = pytest.mark.slow

MESSAGES = [
    {"role": "system", "content": "You are a retired farmer who distrusts politicians."},
    {"role": "user", "content": "Is the nation spending too little, about right or too much?"},
]
LABELS = ("too little", "about right", "too much")


@pytest.fixture(scope="module")
def llama() -> Any:
    pytest.importorskip("llama_cpp")
    from personahub.llm.backends.local import LocalBackend

    backend = LocalBackend(load_settings(backend="local", cache=False, local_instances=1))
    _, instance = backend._pool().get()
    return instance


class EvalCounter:
    """Counts the tokens an instance evaluates, and in how many calls."""

    def __init__(self, llama: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tokens = 0
        self.calls = 0
        evaluate = llama.eval

        def counted(tokens: list[int]) -> None:
            self.tokens += len(tokens)
            self.calls += 1
            evaluate(tokens)

        monkeypatch.setattr(llama, "eval", counted)


def fresh_logprob(llama: Any, tokens: list[int], label: list[int]) -> float:
    """A label's log-probability after ``tokens``, each of its tokens from a fresh evaluation."""
    total = 0.0
    for k, token in enumerate(label):
        llama.reset()
        llama.eval(tokens + label[:k])
        logits = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(llama.n_vocab(),))
        shifted = logits.astype(np.float64) - float(logits.max())
        total += float(shifted[token] - np.log(np.exp(shifted).sum()))
    return total


def test_labels_sharing_a_first_token_score_as_fresh_evaluations(
    llama: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = EvalCounter(llama, monkeypatch)
    found, _, _ = label_logprobs(llama, MESSAGES, LABELS)
    # The prompt once, then "too", "Too", "about", "About" once each: "too little" and
    # "too much" share their start.
    assert counter.calls == 5
    monkeypatch.undo()
    tokens = prompt_tokens(llama, MESSAGES)
    for label in LABELS:
        forms = [llama.tokenize(t.encode(), add_bos=False, special=False) for t in spellings(label)]
        expected = np.logaddexp.reduce([fresh_logprob(llama, tokens, f) for f in forms])
        assert found[label] == pytest.approx(expected, abs=1e-3)


def test_a_survey_evaluates_each_respondents_persona_and_question_only(
    llama: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = {
        "summary": "",
        "memory": [],
        "new": [Observation(0, "event", "a survey interviewer", "A national survey on spending.")],
    }
    question = ChoiceQuestion(
        id="natenvir",
        type="choice",
        ask="The environment: are we spending too little, about right or too much?",
        options=list(LABELS),
    )
    personas = [
        "An adult in the United States. Age: 30 to 44. Sex: woman. Party: strong Democrat.",
        "An adult in the United States. Age: 75 or older. Sex: man. Party: independent.",
    ]
    requests = [option_request(p, context, question, 1) for p in personas]
    llama.reset()
    label_logprobs(llama, requests[0].messages, LABELS)
    counter = EvalCounter(llama, monkeypatch)
    label_logprobs(llama, requests[1].messages, LABELS)
    second = prompt_tokens(llama, requests[1].messages)
    persona = llama.tokenize(personas[1].encode(), add_bos=False, special=False)
    question_part = llama.tokenize(
        requests[1].messages[-1]["content"].split("PERSONA>>>")[1].encode(),
        add_bos=False,
        special=False,
    )
    # Everything before the persona was evaluated for the first respondent and is reused.
    prompt_evaluated = counter.tokens - 4  # the labels' starts, as above
    assert prompt_evaluated <= len(persona) + len(question_part) + 16
    assert prompt_evaluated < len(second) / 2
