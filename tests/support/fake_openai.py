"""A real, local OpenAI-compatible HTTP server for tests and benchmarks.

The server speaks just enough of the OpenAI REST API (``POST /v1/chat/completions``,
``GET /v1/models``) for the official ``openai`` SDK to talk to it unmodified, so the
LLM gateway is exercised through its real HTTP stack (connection pooling, timeouts,
retries, error mapping) rather than through mocks.

Behaviour is scripted through a small JSON config that can be changed at runtime,
either from Python (:meth:`FakeOpenAIServer.configure`) or over HTTP
(``POST /_control``), which is what makes it usable when the server runs in a separate
process:

* ``latency_ms``: artificial delay before every chat answer.
* ``queue``: one-shot actions consumed in order, one per chat request (HTTP errors,
  hangs, broken JSON, literal content).
* ``refuse_json_schema`` / ``refuse_json_object``: mimic llama.cpp's server, which
  answers 500 to response formats it does not support.
* ``rules``: regex -> content mapping over the prompt text.
* ``responder``: an in-process Python callable (in-thread servers only).
* ``vary_strings``: free-text fields of generated schema instances get words picked by a
  hash of the request, so different prompts get different (still valid) answers.

With nothing scripted, a request that carries a JSON schema gets a deterministic,
valid instance of that schema; anything else gets an ``echo:`` of the last user turn.

Two ways to run it:

* In-thread: ``with FakeOpenAIServer(latency_ms=5) as server: ...``.
* Out-of-process (own GIL, for benchmarks): :func:`spawn_server_process`, or
  ``python -m tests.support.fake_openai --port 0 --latency-ms 100``, which prints the
  base URL as its first stdout line. Attach to it with :meth:`FakeOpenAIServer.attach`.

Control endpoints (not part of the OpenAI API): ``POST /_control`` (merge config;
the extra key ``queue_append`` appends to the queue), ``POST /_reset``,
``GET /_stats``, ``GET /_requests``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import json
import math
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, deque
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

Responder = Callable[[dict[str, Any]], Any]
"""Signature of ``responder``: request body in, content (str/JSON-able) or ``None`` out."""

DEFAULT_MODEL = "fake-model"
MAX_LOGGED_REQUESTS = 5000
BROKEN_JSON = '{"answer": "yes", '

CONFIG_DEFAULTS: dict[str, Any] = {
    "latency_ms": 0.0,
    "queue": [],
    "refuse_json_schema": False,
    "refuse_json_object": False,
    "rules": [],
    "responder": None,
    "models": [DEFAULT_MODEL],
    "vary_strings": False,
}
CONFIG_KEYS = frozenset(CONFIG_DEFAULTS)

# A hung request must outlive any sane client timeout, yet not leak forever if the
# client never disconnects.
_HANG_SECONDS = 3600.0
_HANG_POLL_SECONDS = 0.5
# Recursive schemas (trees, linked lists) would otherwise recurse without bound.
_MAX_SCHEMA_DEPTH = 12
# Benchmarks open hundreds of connections at once; the default backlog of 128 would
# turn a burst into SYN retries and distort latency figures.
_LISTEN_BACKLOG = 2048

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    422: "invalid_request_error",
    429: "requests",
}
_FORMAT_SAMPLES = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "hostname": "example.com",
}


# --------------------------------------------------------------------------- schemas


def generate_instance(schema: Any) -> Any:
    """Build a deterministic instance that validates against a JSON schema.

    Covers the subset pydantic v2 emits: local ``$ref`` (``#/$defs/...``), ``type``
    (including type lists), ``enum``, ``const``, ``anyOf``/``oneOf`` (first non-null
    branch), ``allOf``, object ``properties``/``required`` (all properties are filled),
    array ``items``/``prefixItems``/``minItems``/``maxItems``, numeric bounds
    (``minimum``, ``maximum``, ``exclusiveMinimum``, ``exclusiveMaximum``,
    ``multipleOf``), string ``minLength``/``maxLength`` and common ``format`` values.
    ``pattern`` is not supported.

    Args:
        schema: The JSON schema (the root, so that ``$ref`` can be resolved).

    Returns:
        A JSON-compatible Python value.
    """
    root = schema if isinstance(schema, dict) else {}
    return _gen(schema, root, 0, 0)


WORDS = [
    "amber",
    "basil",
    "cedar",
    "dune",
    "ember",
    "fjord",
    "garnet",
    "harbor",
    "indigo",
    "jasper",
    "kelp",
    "lagoon",
    "meadow",
    "nectar",
    "orchid",
    "pebble",
    "quartz",
    "raven",
    "saffron",
    "tundra",
    "umber",
    "violet",
    "willow",
    "yarrow",
    "zephyr",
    "acorn",
    "birch",
    "coral",
    "delta",
    "fern",
    "grove",
    "heath",
    "iris",
    "juniper",
    "lantern",
    "mill",
    "north",
    "oak",
]


def vary_strings(schema: Any, root: dict[str, Any], value: Any, salt: str) -> Any:
    """Replace free-text strings of ``value`` (no enum, const, format or pattern other than a
    plain-line one) by words picked from a hash of ``salt`` and the field's path, keeping
    length bounds."""
    if isinstance(schema, dict) and "$ref" in schema:
        schema = _resolve_ref(schema["$ref"], root)
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        return {k: vary_strings(props.get(k), root, v, f"{salt}/{k}") for k, v in value.items()}
    if isinstance(value, list):
        items = schema.get("items")
        return [vary_strings(items, root, v, f"{salt}/{i}") for i, v in enumerate(value)]
    free = not any(key in schema for key in ("enum", "const", "format"))
    pattern = schema.get("pattern", "")
    if isinstance(value, str) and free and (not pattern or pattern.startswith("^[^")):
        digest = hashlib.blake2b(salt.encode(), digest_size=32).digest()
        text = " ".join(WORDS[b % len(WORDS)] for b in digest)
        low, high = schema.get("minLength") or 0, schema.get("maxLength") or len(text)
        text = text[:high].rstrip()
        return text + "x" * max(0, low - len(text))
    return value


def _resolve_ref(ref: str, root: dict[str, Any]) -> Any:
    if not ref.startswith("#"):
        return {}  # remote refs are out of scope; an empty schema still yields a value
    node: Any = root
    for raw in ref[1:].split("/"):
        if not raw:
            continue
        part = raw.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return {}
        node = node[part]
    return node


def _is_null_schema(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null"


def _gen(schema: Any, root: dict[str, Any], depth: int, variant: int) -> Any:
    if not isinstance(schema, dict):
        return "sample text"  # `true` / missing schema: anything goes
    if "$ref" in schema:
        target = _resolve_ref(schema["$ref"], root)
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        merged = {**target, **siblings} if siblings and isinstance(target, dict) else target
        return _gen(merged, root, depth + 1, variant)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        values = [v for v in schema["enum"] if v is not None] or schema["enum"]
        return values[variant % len(values)]
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            non_null = [b for b in branches if not _is_null_schema(b)]
            if not non_null or (depth > _MAX_SCHEMA_DEPTH and len(non_null) < len(branches)):
                return None
            return _gen(non_null[0], root, depth + 1, variant)
    if isinstance(schema.get("allOf"), list):
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for sub in schema["allOf"]:
            if isinstance(sub, dict) and "$ref" in sub:
                sub = _resolve_ref(sub["$ref"], root)
            if isinstance(sub, dict):
                props = {**sub.get("properties", {}), **merged.get("properties", {})}
                required = [*sub.get("required", []), *merged.get("required", [])]
                merged = {**sub, **merged, "properties": props, "required": required}
        return _gen(merged, root, depth + 1, variant)

    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((t for t in kind if t != "null"), "null")
    if kind is None:
        if "properties" in schema or "required" in schema:
            kind = "object"
        elif "items" in schema or "prefixItems" in schema:
            kind = "array"
        else:
            kind = "string"

    if kind == "object":
        return _gen_object(schema, root, depth)
    if kind == "array":
        return _gen_array(schema, root, depth)
    if kind == "integer":
        return _gen_integer(schema, variant)
    if kind == "number":
        return _gen_number(schema, variant)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _gen_string(schema, variant)


def _gen_object(schema: dict[str, Any], root: dict[str, Any], depth: int) -> dict[str, Any]:
    required = set(schema.get("required") or ())
    out: dict[str, Any] = {}
    for name, sub in (schema.get("properties") or {}).items():
        if depth > _MAX_SCHEMA_DEPTH and name not in required:
            continue
        out[name] = _gen(sub, root, depth + 1, 0)
    for name in required:
        if name not in out:
            out[name] = "sample text"
    extra = schema.get("additionalProperties")
    extra_schema = extra if isinstance(extra, dict) else {}
    while len(out) < (schema.get("minProperties") or 0):
        out[f"key{len(out)}"] = _gen(extra_schema, root, depth + 1, len(out))
    return out


def _gen_array(schema: dict[str, Any], root: dict[str, Any], depth: int) -> list[Any]:
    min_items = schema.get("minItems")
    max_items = schema.get("maxItems")
    count = min_items if min_items is not None else 1
    if max_items is not None:
        count = min(count, max_items)
    if depth > _MAX_SCHEMA_DEPTH:
        count = min_items or 0
    prefix = schema.get("prefixItems") or []
    items = schema.get("items", {})
    out: list[Any] = []
    for i in range(count):
        if i < len(prefix):
            sub = prefix[i]
        elif items is False:
            break
        else:
            sub = items
        # A distinct variant per position keeps scalars unique, for `uniqueItems`.
        out.append(_gen(sub, root, depth + 1, i))
    return out


def _gen_string(schema: dict[str, Any], variant: int) -> str:
    fmt = schema.get("format")
    text = _FORMAT_SAMPLES.get(fmt, "sample text") if isinstance(fmt, str) else "sample text"
    if variant and fmt not in _FORMAT_SAMPLES:
        text = f"{text} {variant}"
    min_len = schema.get("minLength") or 0
    max_len = schema.get("maxLength")
    if len(text) < min_len:
        text += "x" * (min_len - len(text))
    if max_len is not None and len(text) > max_len:
        text = text[:max_len]
    return text


def _is_number(value: Any) -> bool:
    # Draft-4 boolean exclusive bounds are legal but pydantic never emits them.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _numeric_bounds(schema: dict[str, Any]) -> tuple[Any, bool, Any, bool]:
    """Return (low, low_exclusive, high, high_exclusive); bounds may be None."""
    low, low_excl = schema.get("minimum"), False
    exc_min = schema.get("exclusiveMinimum")
    if _is_number(exc_min) and (low is None or exc_min >= low):
        low, low_excl = exc_min, True
    high, high_excl = schema.get("maximum"), False
    exc_max = schema.get("exclusiveMaximum")
    if _is_number(exc_max) and (high is None or exc_max <= high):
        high, high_excl = exc_max, True
    return low, low_excl, high, high_excl


def _gen_integer(schema: dict[str, Any], variant: int) -> int:
    low, low_excl, high, high_excl = _numeric_bounds(schema)
    lo = None if low is None else (math.floor(low) + 1 if low_excl else math.ceil(low))
    hi = None if high is None else (math.ceil(high) - 1 if high_excl else math.floor(high))
    if lo is not None:
        value = lo + variant
    elif hi is not None:
        value = min(hi, 1) + variant
    else:
        value = 1 + variant
    if hi is not None:
        value = min(value, hi)
    step = schema.get("multipleOf")
    if isinstance(step, int) and step > 0:
        value = math.ceil(value / step) * step
        if hi is not None and value > hi:
            value -= step
    return int(value)


def _gen_number(schema: dict[str, Any], variant: int) -> float:
    low, low_excl, high, high_excl = _numeric_bounds(schema)
    if low is not None and high is not None:
        # The midpoint satisfies both bounds whether they are exclusive or not.
        value = (low + high) / 2
    elif low is not None:
        value = low + (1 if low_excl else 0) + variant
    elif high is not None:
        value = min(high - 1 if high_excl else high, 1.0) - variant
    else:
        value = 1.0 + variant
    step = schema.get("multipleOf")
    if isinstance(step, int | float) and step > 0:
        value = math.ceil(value / step) * step
    return float(value)


# --------------------------------------------------------------------------- helpers


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        # Multi-part (vision-style) messages: only the text parts carry words.
        return "\n".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _as_content(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _request_schema(response_format: Any) -> dict[str, Any] | None:
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
    elif kind == "json_object":
        # llama.cpp's extension: a schema riding along with json_object mode.
        schema = response_format.get("schema")
    else:
        return None
    return schema if isinstance(schema, dict) else None


def _error_response(
    status: int,
    message: str,
    *,
    error_type: str | None = None,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = {
        "error": {
            "message": message,
            "type": error_type or _ERROR_TYPES.get(status, "server_error"),
            "param": param,
            "code": code,
        }
    }
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type="application/json",
        headers=headers,
    )


def _json_response(payload: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(payload).encode(), content_type="application/json"
    )


def _validate_config(update: dict[str, Any]) -> None:
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
    responder = update.get("responder")
    if responder is not None and not callable(responder):
        raise ValueError("'responder' must be callable or None")


# --------------------------------------------------------------------------- core


class _ServerCore:
    """State plus aiohttp handlers; shared by the in-thread and the process modes.

    Handlers run on the server's event loop while the Python helpers run on the test's
    thread, so every state mutation goes through ``_lock``. The config dict itself is
    replaced rather than mutated, letting handlers read a consistent snapshot lock-free.
    """

    def __init__(self, initial_config: dict[str, Any]) -> None:
        _validate_config(initial_config)
        self._defaults = {**CONFIG_DEFAULTS, **initial_config}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._config: dict[str, Any] = {}
        self._queue: deque[dict[str, Any]] = deque()
        self._log: deque[dict[str, Any]] = deque(maxlen=MAX_LOGGED_REQUESTS)
        self._total = 0
        self._hung = 0
        self._by_format: Counter[str] = Counter()
        self._by_status: Counter[int] = Counter()
        self.reset()
        # An initial queue is a one-off script for startup; reset() empties the queue.
        self._queue.extend(dict(item) for item in self._defaults["queue"])

    # ----- state, callable from any thread

    def apply(self, update: dict[str, Any]) -> dict[str, Any]:
        """Merge ``update`` into the config and return the resulting config."""
        _validate_config(update)
        with self._lock:
            config = {**self._config, **update}
            if "queue" in update:
                self._queue = deque(dict(item) for item in update["queue"])
            self._queue.extend(dict(item) for item in update.get("queue_append", []))
            config.pop("queue", None)
            config.pop("queue_append", None)
            config["latency_ms"] = float(config["latency_ms"])
            config["rules"] = [dict(rule) for rule in config["rules"]]
            self._config = config
        return self.config()

    def reset(self) -> None:
        """Restore the initial config and clear the queue, the log and the counters."""
        with self._lock:
            self._config = {k: v for k, v in self._defaults.items() if k != "queue"}
            self._queue.clear()
            self._log.clear()
            self._total = self._hung = 0
            self._by_format.clear()
            self._by_status.clear()

    def config(self) -> dict[str, Any]:
        """Return the JSON-serialisable view of the config (without ``responder``)."""
        with self._lock:
            view = {k: v for k, v in self._config.items() if k != "responder"}
            view["queue"] = list(self._queue)
        return view

    def stats(self) -> dict[str, Any]:
        """Return request counters for chat completions."""
        with self._lock:
            return {
                "total": self._total,
                "hung": self._hung,
                "by_response_format": dict(self._by_format),
                "by_status": dict(self._by_status),
            }

    def requests(self) -> list[dict[str, Any]]:
        """Return the logged chat request bodies, oldest first."""
        with self._lock:
            return list(self._log)

    # ----- HTTP

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/_control", self._control)
        app.router.add_post("/_reset", self._reset)
        app.router.add_get("/_stats", self._stats)
        app.router.add_get("/_requests", self._requests)
        return app

    async def start(self, host: str, port: int) -> tuple[web.AppRunner, int]:
        """Start listening; returns the runner (for cleanup) and the bound port."""
        # handler_cancellation: a hung or sleeping handler must die with its client,
        # otherwise benchmark timeouts would pile up idle tasks on the server.
        runner = web.AppRunner(
            self.make_app(), access_log=None, handler_cancellation=True, shutdown_timeout=0.5
        )
        await runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        site = web.SockSite(runner, sock, backlog=_LISTEN_BACKLOG, shutdown_timeout=0.5)
        await site.start()
        return runner, sock.getsockname()[1]

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _error_response(400, "request body is not valid JSON")
        if not isinstance(body, dict):
            return _error_response(400, "request body must be a JSON object")
        response_format = body.get("response_format")
        format_type = (
            str(response_format.get("type")) if isinstance(response_format, dict) else "none"
        )
        with self._lock:
            self._total += 1
            self._by_format[format_type] += 1
            self._log.append({**body, "has_auth": "Authorization" in request.headers})
            action = self._queue.popleft() if self._queue else None
            config = self._config

        if action is not None and action.get("hang"):
            with self._lock:
                self._hung += 1
            await self._hang(request)
            return _error_response(504, "fake-openai: hang elapsed")

        latency = config["latency_ms"]
        if latency > 0:
            await asyncio.sleep(latency / 1000.0)
        response = self._answer(body, format_type, action, config)
        with self._lock:
            self._by_status[response.status] += 1
        return response

    async def _hang(self, request: web.Request) -> None:
        deadline = time.monotonic() + _HANG_SECONDS
        # handler_cancellation normally ends this on disconnect; polling the transport
        # is the fallback should that ever be switched off.
        while time.monotonic() < deadline:
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            await asyncio.sleep(_HANG_POLL_SECONDS)

    def _answer(
        self,
        body: dict[str, Any],
        format_type: str,
        action: dict[str, Any] | None,
        config: dict[str, Any],
    ) -> web.Response:
        if body.get("stream"):
            return _error_response(400, "fake-openai does not support streaming", param="stream")
        messages = body.get("messages")
        texts = (
            [_content_text(m.get("content")) for m in messages if isinstance(m, dict)]
            if isinstance(messages, list)
            else []
        )
        schema = _request_schema(body.get("response_format"))

        content: str | None = None
        if action is not None:
            status = int(action.get("status", 200))
            if status >= 400:
                return self._action_error(status, action)
            if action.get("broken_json"):
                content = _broken_json(schema)
            elif "content" in action:
                content = _as_content(action["content"])
        if content is None:
            if format_type == "json_schema" and config["refuse_json_schema"]:
                return self._refusal("json_schema")
            if format_type == "json_object" and config["refuse_json_object"]:
                return self._refusal("json_object")
            content = self._scripted_content(body, texts, config)
        if content is None:
            if schema is not None:
                instance = generate_instance(schema)
                if config.get("vary_strings"):
                    salt = json.dumps([texts, body.get("seed")])
                    instance = vary_strings(schema, schema, instance, salt)
                content = json.dumps(instance)
            else:
                content = "echo: " + _last_user_text(messages)[:60]
        return self._completion(body, texts, content)

    @staticmethod
    def _action_error(status: int, action: dict[str, Any]) -> web.Response:
        headers: dict[str, str] = {}
        if "retry_after" in action:
            headers["Retry-After"] = str(action["retry_after"])
        if "retry_after_ms" in action:
            headers["retry-after-ms"] = str(action["retry_after_ms"])
        default_message = {
            429: "Rate limit reached (fake-openai)",
            500: "The server had an error (fake-openai)",
            503: "The server is overloaded (fake-openai)",
        }.get(status, f"fake-openai scripted error {status}")
        return _error_response(
            status,
            str(action.get("message", default_message)),
            code="rate_limit_exceeded" if status == 429 else None,
            headers=headers or None,
        )

    @staticmethod
    def _refusal(kind: str) -> web.Response:
        # Same status and wording as llama.cpp's server, which is what we emulate.
        return _error_response(
            500,
            f"response_format type {kind} is not supported",
            error_type="server_error",
            param="response_format",
        )

    @staticmethod
    def _scripted_content(
        body: dict[str, Any], texts: list[str], config: dict[str, Any]
    ) -> str | None:
        responder = config.get("responder")
        if responder is not None:
            result = responder(body)
            if result is not None:
                return _as_content(result)
        rules = config["rules"]
        if rules:
            prompt = "\n".join(texts)
            for rule in rules:
                if re.search(rule["match"], prompt, re.DOTALL):
                    return _as_content(rule["content"])
        return None

    def _completion(self, body: dict[str, Any], texts: list[str], content: str) -> web.Response:
        prompt_tokens = sum(len(text.split()) for text in texts)
        completion_tokens = max(1, len(content.split()))
        return _json_response(
            {
                "id": f"chatcmpl-fake-{next(self._ids)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model") or DEFAULT_MODEL,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    async def _models(self, request: web.Request) -> web.Response:
        models = self._config["models"]
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in models]
        return _json_response({"object": "list", "data": data})

    async def _control(self, request: web.Request) -> web.Response:
        try:
            update = json.loads(await request.read() or b"{}")
            if not isinstance(update, dict):
                raise ValueError("control body must be a JSON object")
            if "responder" in update:
                raise ValueError("'responder' can only be set in-process")
            return _json_response(self.apply(update))
        except (ValueError, TypeError, re.error) as exc:
            return _error_response(400, str(exc))

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset()
        return _json_response(self.config())

    async def _stats(self, request: web.Request) -> web.Response:
        return _json_response(self.stats())

    async def _requests(self, request: web.Request) -> web.Response:
        return _json_response(self.requests())


def _last_user_text(messages: Any) -> str:
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return _content_text(message.get("content"))
    return ""


def _broken_json(schema: dict[str, Any] | None) -> str:
    """Truncate a schema instance mid-way, the way a model cut off by max_tokens does."""
    if schema is not None:
        text = json.dumps(generate_instance(schema))
        truncated = text[: len(text) // 2]
        try:
            json.loads(truncated)
        except ValueError:
            return truncated
    return BROKEN_JSON


# --------------------------------------------------------------------------- public API


class FakeOpenAIServer:
    """OpenAI-compatible server in a background thread, or a handle to a remote one.

    Example:
        >>> with FakeOpenAIServer(latency_ms=5) as server:  # doctest: +SKIP
        ...     client = openai.AsyncOpenAI(base_url=server.base_url, api_key="k")
        ...     server.configure(queue=[{"status": 429, "retry_after": "0.2"}])

    Args:
        latency_ms: Delay before every chat answer.
        host: Interface to bind.
        port: Port to bind; 0 picks a free one.
        **config: Initial values for any other config key (see ``CONFIG_DEFAULTS``).
            ``reset()`` returns to this initial config.
    """

    def __init__(
        self, latency_ms: float = 0, host: str = "127.0.0.1", port: int = 0, **config: Any
    ) -> None:
        self._host = host
        self._port = port
        self._core: _ServerCore | None = _ServerCore({"latency_ms": latency_ms, **config})
        self._remote_root: str | None = None
        self._base_url: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def attach(cls, base_url: str) -> FakeOpenAIServer:
        """Return a handle controlling a server that runs elsewhere (e.g. another process).

        Args:
            base_url: The server's ``.../v1`` base URL.

        Returns:
            A handle whose helpers talk HTTP; ``start``/``stop`` are not available.
        """
        handle = cls.__new__(cls)
        handle._host = handle._port = None  # type: ignore[assignment]
        handle._core = None
        handle._base_url = base_url.rstrip("/")
        handle._remote_root = handle._base_url.removesuffix("/v1")
        handle._loop = handle._runner = handle._thread = None
        return handle

    @property
    def base_url(self) -> str:
        """The ``http://host:port/v1`` URL to give the OpenAI client."""
        if self._base_url is None:
            raise RuntimeError("FakeOpenAIServer is not started")
        return self._base_url

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self.base_url.rsplit(":", 1)[1].split("/", 1)[0])

    # ----- lifecycle

    def start(self, timeout: float = 10.0) -> FakeOpenAIServer:
        """Start serving in a daemon thread; returns once the socket is listening.

        Args:
            timeout: Seconds to wait for the server to come up.

        Returns:
            ``self``, for chaining.
        """
        core = self._require_local()
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                self._runner, port = loop.run_until_complete(core.start(self._host, self._port))
                url_host = "127.0.0.1" if self._host in ("0.0.0.0", "") else self._host
                if ":" in url_host:
                    url_host = f"[{url_host}]"
                self._base_url = f"http://{url_host}:{port}/v1"
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=serve, name="fake-openai", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("fake-openai server did not start in time")
        if failure:
            self._thread = None
            raise failure[0]
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server and join its thread; safe to call twice."""
        thread, loop, runner = self._thread, self._loop, self._runner
        if thread is None or loop is None:
            return
        if runner is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._thread = self._loop = self._runner = None
        self._base_url = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ----- control helpers (local or remote)

    def configure(self, **kwargs: Any) -> dict[str, Any]:
        """Merge config keys (see module docstring) into the live config.

        Args:
            **kwargs: Config keys; ``queue`` replaces the queue, ``queue_append`` extends it.

        Returns:
            The resulting config (without ``responder``).
        """
        if self._core is not None:
            return self._core.apply(kwargs)
        if "responder" in kwargs:
            raise ValueError("'responder' can only be set on an in-thread server")
        return self._http("POST", "/_control", kwargs)

    def enqueue(self, *actions: dict[str, Any]) -> dict[str, Any]:
        """Append one-shot actions to the queue.

        Args:
            *actions: Queue items such as ``{"status": 500}`` or ``{"hang": True}``.

        Returns:
            The resulting config.
        """
        return self.configure(queue_append=list(actions))

    def reset(self) -> None:
        """Restore the initial config and clear the queue, request log and counters."""
        if self._core is not None:
            self._core.reset()
        else:
            self._http("POST", "/_reset", {})

    def stats(self) -> dict[str, Any]:
        """Return ``{"total", "hung", "by_response_format", "by_status"}`` for chat calls.

        ``by_status`` is keyed by int status code; ``by_response_format`` by the
        ``response_format.type`` string, or ``"none"``.
        """
        if self._core is not None:
            return self._core.stats()
        stats = self._http("GET", "/_stats")
        stats["by_status"] = {int(k): v for k, v in stats["by_status"].items()}
        return stats

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Logged chat request bodies (last 5000), each with an extra ``has_auth`` bool."""
        if self._core is not None:
            return self._core.requests()
        return self._http("GET", "/_requests")

    def _require_local(self) -> _ServerCore:
        if self._core is None:
            raise RuntimeError("this handle controls a remote server; it cannot start/stop it")
        return self._core

    def _http(self, method: str, path: str, payload: Any = None) -> Any:
        root = self._remote_root
        assert root is not None
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            root + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        # Bypass any *_proxy environment: the server is always directly reachable.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise ValueError(f"fake-openai {path}: {exc.read().decode(errors='replace')}") from exc


def spawn_server_process(
    latency_ms: float = 0,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout: float = 15.0,
    **config: Any,
) -> tuple[subprocess.Popen[str], str]:
    """Run the server in a child process, so it does not share the client's GIL.

    Args:
        latency_ms: Delay before every chat answer.
        host: Interface to bind.
        port: Port to bind; 0 picks a free one.
        startup_timeout: Seconds to wait for the child to report its URL.
        **config: Initial JSON-serialisable config (no ``responder``).

    Returns:
        The process (stop it with :func:`stop_server_process` or ``kill()``) and its
        base URL. Control it with ``FakeOpenAIServer.attach(base_url)``.
    """
    command = [
        sys.executable,
        "-m",
        "tests.support.fake_openai",
        "--host",
        host,
        "--port",
        str(port),
        "--latency-ms",
        str(latency_ms),
    ]
    if config:
        command += ["--config-json", json.dumps(config)]
    repo_root = Path(__file__).resolve().parents[2]
    # stderr is inherited: a pipe nobody drains could fill up and stall the server.
    process = subprocess.Popen(command, cwd=repo_root, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        ready = selector.select(startup_timeout)
    line = process.stdout.readline().strip() if ready else ""
    if not line.startswith("http"):
        stop_server_process(process)
        raise RuntimeError(f"fake-openai process failed to start (first line: {line!r})")
    return process, line


def stop_server_process(process: subprocess.Popen[Any], timeout: float = 5.0) -> int:
    """Terminate a process from :func:`spawn_server_process`, killing it if needed.

    Returns:
        The exit code.
    """
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    if process.stdout is not None:
        process.stdout.close()
    return process.returncode


# --------------------------------------------------------------------------- __main__


async def _serve_forever(host: str, port: int, config: dict[str, Any]) -> None:
    core = _ServerCore(config)
    runner, bound = await core.start(host, port)
    url_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    print(f"http://{url_host}:{bound}/v1", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: Iterable[str] | None = None) -> None:
    """Command-line entry point; prints the base URL, then serves until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=None, help="overrides the config")
    parser.add_argument("--config-json", default="{}", help="initial config as a JSON object")
    args = parser.parse_args(None if argv is None else list(argv))
    config = json.loads(args.config_json)
    if not isinstance(config, dict):
        parser.error("--config-json must be a JSON object")
    if args.latency_ms is not None:
        config["latency_ms"] = args.latency_ms
    asyncio.run(_serve_forever(args.host, args.port, config))


if __name__ == "__main__":
    main()
