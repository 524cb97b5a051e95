"""The request handling of the fake OpenAI-compatible server (:mod:`.fake_openai`): its state
(config, queue, request log, counters) and the aiohttp application. The config's keys are in
:mod:`.fake_config`, the answers in :mod:`.fake_replies`, the HTTP bodies in :mod:`.fake_http`."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import socket
import threading
import time
from collections import Counter, deque
from typing import Any

from aiohttp import web

from personahub.llm.testing.fake_config import (
    CONFIG_DEFAULTS,
    DEFAULT_MODEL,
    MAX_LOGGED_REQUESTS,
    validate_config,
)
from personahub.llm.testing.fake_http import action_error, error_response, json_response, refusal
from personahub.llm.testing.fake_replies import (
    as_content,
    broken_json,
    first_token_logprobs,
    message_texts,
    option_spread,
    request_schema,
    unscripted_reply,
)

# A hung request must outlive any sane client timeout, yet not leak forever if the
# client never disconnects.
_HANG_SECONDS = 3600.0
_HANG_POLL_SECONDS = 0.5
# Benchmarks open hundreds of connections at once; the default backlog of 128 would
# turn a burst into SYN retries and distort latency figures.
_LISTEN_BACKLOG = 2048


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
            return error_response(400, "request body is not valid JSON")
        if not isinstance(body, dict):
            return error_response(400, "request body must be a JSON object")
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
            return error_response(504, "fake-openai: hang elapsed")

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
            return error_response(400, "fake-openai does not support streaming", param="stream")
        messages = body.get("messages")
        texts = message_texts(messages)
        schema = request_schema(body.get("response_format"))

        content: str | None = None
        if action is not None:
            status = int(action.get("status", 200))
            if status >= 400:
                return action_error(status, action)
            if action.get("broken_json"):
                content = broken_json(schema)
            elif "content" in action:
                content = as_content(action["content"])
        if content is None:
            if format_type == "json_schema" and config["refuse_json_schema"]:
                return refusal("json_schema")
            if format_type == "json_object" and config["refuse_json_object"]:
                return refusal("json_object")
            content = self._scripted_content(body, texts, config)
        top = config["top_logprobs"]
        if content is None:
            seed = body.get("seed")
            content = unscripted_reply(messages, schema, seed, vary=config["vary_strings"])
            if top is None and schema is None:
                top = option_spread(messages, seed)
        return self._completion(body, texts, content, config, top)

    @staticmethod
    def _scripted_content(
        body: dict[str, Any], texts: list[str], config: dict[str, Any]
    ) -> str | None:
        responder = config.get("responder")
        if responder is not None:
            result = responder(body)
            if result is not None:
                return as_content(result)
        rules = config["rules"]
        if rules:
            prompt = "\n".join(texts)
            for rule in rules:
                if re.search(rule["match"], prompt, re.DOTALL):
                    return as_content(rule["content"])
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
            first_token_logprobs(content, top, int(body.get("top_logprobs") or 0))
            if body.get("logprobs") and config["logprobs"]
            else None
        )
        return json_response(
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
        return json_response({"object": "list", "data": data})

    async def _control(self, request: web.Request) -> web.Response:
        try:
            update = json.loads(await request.read() or b"{}")
            if not isinstance(update, dict):
                raise ValueError("control body must be a JSON object")
            if "responder" in update:
                raise ValueError("'responder' can only be set in-process")
            return json_response(self.apply(update))
        except (ValueError, TypeError, re.error) as exc:
            return error_response(400, str(exc))

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset()
        return json_response(self.config())

    async def _stats(self, request: web.Request) -> web.Response:
        return json_response(self.stats())

    async def _requests(self, request: web.Request) -> web.Response:
        return json_response(self.requests())
