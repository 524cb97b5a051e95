"""The fixture OpenAI server's answers, known in advance, for measuring the cost estimate's
machinery (who asks when, prompt sizes, how conversations end) apart from its typical-answer
tables, which only a real model can check (``benchmarks/estimate_accuracy.py``)."""

from __future__ import annotations

from personahub.llm.backends.base import BackendCall
from personahub.llm.testing.fake_replies import unscripted_reply
from sandbox.estimate.dry import KnownAnswers


def _fixture_reply(call: BackendCall) -> str:
    return unscripted_reply(call.messages, call.schema, call.seed)


FIXTURE_ANSWERS = KnownAnswers(
    reply=_fixture_reply,
    described="the fixture server's unscripted answers",
    # its top tokens are the first tokens of the options the prompt lists
    option_logprobs=True,
)
