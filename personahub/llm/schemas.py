"""What the layers share about a request's shape: the JSON schema sent for a pydantic model
(computed once per class), its canonical JSON (hashed into cache keys) and the sampling
parameters with the configured defaults filled in."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from personahub.llm.types import LLMRequest

if TYPE_CHECKING:
    from personahub.llm.settings import LLMSettings


def canonical_json(value: Any) -> str:
    """The canonical JSON text hashed into cache keys (sorted keys, no spaces)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


class SchemaTable:
    """The JSON schema of each pydantic model and its canonical JSON (for cache keys),
    computed once per class for the gateway's lifetime."""

    def __init__(self) -> None:
        self._entries: dict[type[BaseModel], tuple[dict[str, Any], str]] = {}

    def entry(self, model: type[BaseModel]) -> tuple[dict[str, Any], str]:
        found = self._entries.get(model)
        if found is None:
            schema = model.model_json_schema()
            found = (schema, canonical_json(schema))
            self._entries[model] = found
        return found


def sampling(request: LLMRequest[Any], settings: LLMSettings) -> tuple[float, int]:
    """The request's temperature and completion budget, the configured ones where unset."""
    temperature = settings.temperature if request.temperature is None else request.temperature
    max_tokens = settings.max_tokens if request.max_tokens is None else request.max_tokens
    return temperature, max_tokens
