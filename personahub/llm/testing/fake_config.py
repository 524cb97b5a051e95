"""The fake server's scriptable config (:mod:`.fake_openai` lists the keys): defaults and
validation, shared by the in-thread server, the server process and ``POST /_control``."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Responder = Callable[[dict[str, Any]], Any]
"""Signature of ``responder``: request body in, content (str/JSON-able) or ``None`` out."""

DEFAULT_MODEL = "fake-model"
MAX_LOGGED_REQUESTS = 5000

CONFIG_DEFAULTS: dict[str, Any] = {
    "latency_ms": 0.0,
    "queue": [],
    "refuse_json_schema": False,
    "refuse_json_object": False,
    "rules": [],
    "responder": None,
    "models": [DEFAULT_MODEL],
    "vary_strings": True,
    "logprobs": True,
    "top_logprobs": None,
}
CONFIG_KEYS = frozenset(CONFIG_DEFAULTS)


def validate_config(update: dict[str, Any]) -> None:
    """Raise ValueError for an unknown key or a value of the wrong shape, before it is used."""
    unknown = set(update) - CONFIG_KEYS - {"queue_append"}
    if unknown:
        raise ValueError(f"unknown fake-openai config keys: {sorted(unknown)}")
    for key in ("queue", "queue_append", "rules", "models"):
        if key in update and not isinstance(update[key], list):
            raise ValueError(f"{key!r} must be a list")
    for rule in update.get("rules", []):
        if not isinstance(rule, dict) or "match" not in rule or "content" not in rule:
            raise ValueError(f"rule must be {{'match': regex, 'content': ...}}, got {rule!r}")
        re.compile(rule["match"], re.DOTALL)  # fail at configure time, not per request
    if "latency_ms" in update:
        float(update["latency_ms"])
    top = update.get("top_logprobs")
    if top is not None and not (
        isinstance(top, dict) and all(isinstance(v, int | float) for v in top.values())
    ):
        raise ValueError("'top_logprobs' must map tokens to logprobs, or be None")
    responder = update.get("responder")
    if responder is not None and not callable(responder):
        raise ValueError("'responder' must be callable or None")
