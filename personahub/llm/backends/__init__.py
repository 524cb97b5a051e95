"""Gateway backends: ``local`` (embedded GGUF model) and ``openai`` (compatible servers)."""

from __future__ import annotations

from personahub.llm.backends.base import Backend, BackendCall, BackendReply
from personahub.llm.settings import LLMSettings


def create_backend(settings: LLMSettings) -> Backend:
    """The backend named by ``settings.backend``, constructed lazily-cheap (no model load yet)."""
    if settings.backend == "local":
        from personahub.llm.backends.local import LocalBackend

        return LocalBackend(settings)
    from personahub.llm.backends.openai_compat import OpenAIBackend

    return OpenAIBackend(settings)


__all__ = ["Backend", "BackendCall", "BackendReply", "create_backend"]
