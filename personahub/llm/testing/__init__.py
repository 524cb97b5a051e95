"""Test doubles of the LLM gateway: in-process backends and the fake OpenAI-compatible server.

For tests and benchmarks only (like ``pydantic_ai.models.test``): :class:`FunctionBackend`
and :class:`TestBackend` answer in-process, :mod:`.fake_openai` serves the OpenAI REST API
over real HTTP (its ``aiohttp`` dependency is a dev extra) for the ``openai`` backend's own
tests, failover tests and benchmarks.
"""

from personahub.llm.testing.backends import FunctionBackend, TestBackend, schema_answer

__all__ = ["FunctionBackend", "TestBackend", "schema_answer"]
