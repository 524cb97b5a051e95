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
* ``vary_strings`` (default on): free-text fields of generated schema instances get words
  picked by a hash of the request, and their flags a value from it, so different prompts
  get different (still valid) answers; off, every request with the same schema gets the
  same instance.
* ``logprobs`` (default on): a request with ``logprobs: true`` gets OpenAI's ``logprobs`` for
  the reply's first token; off, ``logprobs`` is null, as from servers without them.
* ``top_logprobs``: ``{token: logprob}`` scripting that first position's top tokens (by
  default the reply's first word, with logprob 0; for an unscripted reply to a prompt that
  lists answer options, those options' first words with a spread hashed from the prompt).

With nothing scripted the server answers as an instruction-following model would
(:func:`~personahub.llm.testing.fake_replies.unscripted_reply`): a request that carries a JSON
schema gets a valid instance of that schema, varied by the prompt; a prompt that lists answer
options (an option request) gets the first token of one of them, its top tokens spread over
all of them; anything else gets an ``echo:`` of the last user turn.

Two ways to run it:

* In-thread: ``with FakeOpenAIServer(latency_ms=5) as server: ...``.
* Out-of-process (own GIL, for benchmarks; :mod:`.fake_process`): :func:`spawn_server_process`, or
  ``python -m personahub.llm.testing.fake_openai --port 0 --latency-ms 100``, which prints the
  base URL as its first stdout line. Attach to it with :meth:`FakeOpenAIServer.attach`.

Control endpoints (not part of the OpenAI API): ``POST /_control`` (merge config;
the extra key ``queue_append`` appends to the queue), ``POST /_reset``,
``GET /_stats``, ``GET /_requests``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import urllib.error
import urllib.request
from types import TracebackType
from typing import Any

from aiohttp import web

from personahub.llm.testing.fake_app import ServerCore
from personahub.llm.testing.fake_config import (
    CONFIG_DEFAULTS,
    CONFIG_KEYS,
    DEFAULT_MODEL,
    MAX_LOGGED_REQUESTS,
    Responder,
)
from personahub.llm.testing.fake_process import main, spawn_server_process, stop_server_process
from personahub.llm.testing.fake_replies import BROKEN_JSON
from personahub.llm.testing.schema_instances import WORDS, generate_instance, vary_strings

__all__ = [
    "BROKEN_JSON",
    "CONFIG_DEFAULTS",
    "CONFIG_KEYS",
    "DEFAULT_MODEL",
    "MAX_LOGGED_REQUESTS",
    "WORDS",
    "FakeOpenAIServer",
    "Responder",
    "generate_instance",
    "spawn_server_process",
    "stop_server_process",
    "vary_strings",
]


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
        self._core: ServerCore | None = ServerCore({"latency_ms": latency_ms, **config})
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
        handle._host, handle._port = "", 0  # unused: a remote handle cannot start a server
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
        config: dict[str, Any] = self._http("POST", "/_control", kwargs)
        return config

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
        stats: dict[str, Any] = self._http("GET", "/_stats")
        stats["by_status"] = {int(k): v for k, v in stats["by_status"].items()}
        return stats

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Logged chat request bodies (last 5000), each with an extra ``has_auth`` bool."""
        if self._core is not None:
            return self._core.requests()
        logged: list[dict[str, Any]] = self._http("GET", "/_requests")
        return logged

    def _require_local(self) -> ServerCore:
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


if __name__ == "__main__":
    main()
