"""The LLM gateway: every language-model call in this project goes through here.

Usage::

    from personahub.llm import LLMClient, LLMRequest, load_settings

    async with LLMClient(load_settings(backend="local")) as llm:
        reply = await llm.chat([{"role": "user", "content": "Hello"}])
        persona = await llm.structured(messages, PersonaOut)
        results = await llm.batch([LLMRequest(messages=m, schema=PersonaOut) for m in many])
"""

from personahub.llm.backends import Capabilities
from personahub.llm.client import LLMClient
from personahub.llm.gateway import Gateway
from personahub.llm.settings import ConfigError, LLMSettings, load_settings
from personahub.llm.types import (
    ErrorKind,
    LLMCallError,
    LLMError,
    LLMRequest,
    LLMResult,
    Message,
    Usage,
)

__all__ = [
    "Capabilities",
    "ConfigError",
    "ErrorKind",
    "Gateway",
    "LLMCallError",
    "LLMClient",
    "LLMError",
    "LLMRequest",
    "LLMResult",
    "LLMSettings",
    "Message",
    "Usage",
    "load_settings",
]
