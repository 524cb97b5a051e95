"""Gateway backends: ``local`` (embedded GGUF model) and ``openai`` (compatible servers).

Each is registered by name (:mod:`personahub.llm.backends.registry`); its module is imported
only when a backend of that kind is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from personahub.llm.backends.base import Backend, BackendCall, BackendReply, Capabilities
from personahub.llm.backends.registry import (
    BackendName,
    backend_names,
    backend_spec,
    register_backend,
)

if TYPE_CHECKING:
    from personahub.llm.settings import LLMSettings

LOCAL_MODEL_NAME = "SmolLM2-135M-Instruct"


def _local(settings: LLMSettings) -> Backend:
    from personahub.llm.backends.local import LocalBackend

    return LocalBackend(settings)


def _openai(settings: LLMSettings) -> Backend:
    from personahub.llm.backends.openai_compat import OpenAIBackend

    return OpenAIBackend(settings)


register_backend("local", _local, default_model=LOCAL_MODEL_NAME)
register_backend("openai", _openai, default_model="gpt-4o-mini")


def create_backend(settings: LLMSettings) -> Backend:
    """The backend named by ``settings.backend``, constructed lazily-cheap (no model load yet)."""
    return backend_spec(settings.backend).factory(settings)


__all__ = [
    "LOCAL_MODEL_NAME",
    "Backend",
    "BackendCall",
    "BackendName",
    "BackendReply",
    "Capabilities",
    "backend_names",
    "backend_spec",
    "create_backend",
    "register_backend",
]
