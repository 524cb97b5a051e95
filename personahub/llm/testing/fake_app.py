"""The request handling of the fake OpenAI-compatible server (:mod:`.fake_openai`): its
scriptable config, the aiohttp application and the answers it gives."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import math
import re
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from aiohttp import web

from personahub.llm.options import hinted_labels
from personahub.llm.testing.schema_instances import generate_instance, vary_strings

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
    "vary_strings": True,
    "logprobs": True,
    "top_logprobs": None,
}
CONFIG_KEYS = frozenset(CONFIG_DEFAULTS)

# A hung request must outlive any sane client timeout, yet not leak forever if the
# client never disconnects.
_HANG_SECONDS = 3600.0
_HANG_POLL_SECONDS = 0.5
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


def validate_config(update: dict[str, Any]) -> None:
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


# --------------------------------------------------------------------------- core


class ServerCore:
    """State plus aiohttp handlers; shared by the in-thread and the process modes.

    Handlers run on the server's event loop while the Python helpers run on the test's
    thread, so every state mutation goes through ``_lock``. The config dict itself is
    replaced rather than mutated, letting handlers read a consistent snapshot lock-free.
    """

    def __init__(self, initial_config: dict[str, Any]) -> None:
        validate_config(initial_config)
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
        validate_config(update)
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
        texts = _texts(messages)
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
        top = config["top_logprobs"]
        if content is None:
            seed = body.get("seed")
            content = unscripted_reply(messages, schema, seed, vary=config["vary_strings"])
            if top is None and schema is None:
                top = option_spread(messages, seed)
        return self._completion(body, texts, content, config, top)

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

    def _completion(
        self,
        body: dict[str, Any],
        texts: list[str],
        content: str,
        config: dict[str, Any],
        top: dict[str, float] | None,
    ) -> web.Response:
        prompt_tokens = sum(len(text.split()) for text in texts)
        completion_tokens = max(1, len(content.split()))
        logprobs = (
            _logprobs(content, top, int(body.get("top_logprobs") or 0))
            if body.get("logprobs") and config["logprobs"]
            else None
        )
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
                        "logprobs": logprobs,
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


def unscripted_reply(
    messages: Any, schema: dict[str, Any] | None, seed: Any = None, *, vary: bool = True
) -> str:
    """The server's reply when nothing is scripted, as an instruction-following model would
    answer (deterministic in the prompt and ``seed``, so a replayed request gets the same):

    * a JSON schema: a valid instance whose free-text strings are words picked by a hash of
      the prompt and the seed, so different prompts get different answers, and whose flags
      come from that hash too, true for about half of the prompts (``vary=False``, the
      ``vary_strings`` config off: the schema's one deterministic instance, every flag true);
    * a prompt that lists answer options (:func:`personahub.llm.options.hinted_labels`): the
      first token of the option :func:`option_spread` ranks first, the one token an option
      request asks for;
    * anything else: an echo of the last user turn.

    Tests that need to know the fixture's answers in advance (e.g. to measure the cost
    estimate's machinery) call this rather than copy it.
    """
    if schema is not None:
        instance = generate_instance(schema)
        if vary:
            instance = vary_strings(schema, schema, instance, _salt(messages, seed), flags=True)
        return json.dumps(instance)
    spread = option_spread(messages, seed)
    if spread is not None:
        return max(spread, key=lambda token: spread[token])
    return "echo: " + _last_user_text(messages)[:60]


def option_spread(messages: Any, seed: Any = None) -> dict[str, float] | None:
    """The first position's top tokens when the last user turn lists answer options: each
    option's first word, with a log-probability from a hash of the prompt, the seed and the
    option (options sharing a first word share its weight, as they share a real model's
    first token). None when the prompt lists no options."""
    labels = hinted_labels(_last_user_text(messages))
    if labels is None:
        return None
    salt = _salt(messages, seed)
    weights: dict[str, float] = {}
    for label in labels:
        token = (label.split() or [label])[0]
        digest = hashlib.sha256(f"{salt}|{label}".encode()).hexdigest()
        weights[token] = weights.get(token, 0.0) + 1 + int(digest[:4], 16) % 9
    total = sum(weights.values())
    return {token: math.log(weight / total) for token, weight in weights.items()}


def _texts(messages: Any) -> list[str]:
    """The text of each message of a request body's ``messages``."""
    if not isinstance(messages, list):
        return []
    return [_content_text(m.get("content")) for m in messages if isinstance(m, dict)]


def _salt(messages: Any, seed: Any) -> str:
    return json.dumps([_texts(messages), seed])


def _last_user_text(messages: Any) -> str:
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return _content_text(message.get("content"))
    return ""


def _logprobs(content: str, top: dict[str, float] | None, count: int) -> dict[str, Any]:
    """OpenAI's ``logprobs`` of a reply, for its first token only: the first word of
    ``content`` (certain) unless ``top`` gives the first position's top tokens (scripted,
    or the spread over the options a prompt lists)."""
    words = content.split()
    first = words[0] if words else ""
    ranked = sorted((top or {first: 0.0}).items(), key=lambda item: -item[1])[: max(1, count)]
    entries = [{"token": t, "logprob": float(lp), "bytes": list(t.encode())} for t, lp in ranked]
    head = entries[0]
    return {"content": [{**head, "top_logprobs": entries}], "refusal": None}


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
