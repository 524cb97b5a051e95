"""The fake OpenAI-compatible server, for tests: it lives in the package, next to the other
test doubles (:mod:`personahub.llm.testing.fake_openai`), so benchmarks can use it too."""

from personahub.llm.testing.fake_openai import (
    WORDS,
    FakeOpenAIServer,
    generate_instance,
    spawn_server_process,
    stop_server_process,
)

__all__ = [
    "WORDS",
    "FakeOpenAIServer",
    "generate_instance",
    "spawn_server_process",
    "stop_server_process",
]
