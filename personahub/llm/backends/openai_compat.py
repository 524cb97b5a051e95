"""The ``openai`` backend: any OpenAI-compatible server through the official SDK.

Structured output prefers ``response_format: json_schema``. Servers that refuse it (llama.cpp's
server answers HTTP 500 naming the field) fall back to ``json_object`` with the schema, then to
prompt-and-parse; the choice is remembered per endpoint. Several endpoints share the load,
least-in-flight first (:mod:`personahub.llm.backends.endpoints`): a request whose endpoint
stops answering moves at once to another one, the endpoint is rested while the others work,
and every move is counted in :meth:`OpenAIBackend.endpoint_usage`.

Until an endpoint has answered one structured request, its structured requests go one at a
time: a server that refuses ``json_schema`` refuses the first request only, and the others
start in the mode it accepted. Without a configured model, the pre-flight check asks the
server which model it serves (``GET /models``) and records that one, so provenance never
names a model that did not answer.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

import openai

from personahub import prompts
from personahub.llm.backends.base import BackendCall, BackendReply, Capabilities
from personahub.llm.backends.endpoints import Endpoint, EndpointPool
from personahub.llm.backends.openai_options import OptionScorer
from personahub.llm.grammar import bounded_integers_as_enums, grammar_schema
from personahub.llm.retry import TransportError, parse_retry_after
from personahub.llm.settings import ConfigError, LLMSettings
from personahub.llm.types import ErrorKind, Message, Usage

log = logging.getLogger("personahub.llm")

STRUCTURED_MODES = ("json_schema", "json_object", "prompt")
_REFUSAL_HINTS = ("response_format", "json_schema", "json_object", "schema")
# A proxy or load balancer in front of a dead server answers these.
_DOWN_STATUSES = frozenset({502, 503, 504})
PREFLIGHT_TIMEOUT_S = 5.0
# Model ids named in the error for a server that serves several.
_LISTED_MODELS = 8

__all__ = ["STRUCTURED_MODES", "Endpoint", "OpenAIBackend"]


class _EndpointDown(Exception):
    """The endpoint did not answer: the request may move to another one."""

    def __init__(self, error: TransportError) -> None:
        super().__init__(error.message)
        self.error = error


def _is_format_refusal(exc: openai.APIStatusError) -> bool:
    if exc.status_code not in (400, 422, 500, 501):
        return False
    text = f"{exc.message} {getattr(exc, 'body', '')}".lower()
    return any(hint in text for hint in _REFUSAL_HINTS)


def _classify(exc: Exception, endpoint: str) -> TransportError:
    error = _classify_cause(exc, endpoint)
    error.endpoint = endpoint
    return error


def _classify_cause(exc: Exception, endpoint: str) -> TransportError:
    if isinstance(exc, openai.APITimeoutError):
        return TransportError(ErrorKind.TIMEOUT, f"request to {endpoint} timed out")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return TransportError(ErrorKind.CONNECTION, f"cannot reach {endpoint}: {cause}")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        headers = exc.response.headers
        retry_after = None
        if "retry-after-ms" in headers:
            retry_after = (parse_retry_after(headers["retry-after-ms"]) or 0) / 1000.0
        elif "retry-after" in headers:
            retry_after = parse_retry_after(headers["retry-after"])
        message = f"HTTP {status} from {endpoint}: {exc.message}"
        if status == 429:
            return TransportError(ErrorKind.RATE_LIMITED, message, retry_after)
        if status in (401, 403):
            return TransportError(ErrorKind.AUTH, message)
        if status == 408:
            return TransportError(ErrorKind.TIMEOUT, message, retry_after)
        if status >= 500:
            return TransportError(ErrorKind.SERVER_ERROR, message, retry_after)
        return TransportError(ErrorKind.BAD_REQUEST, message)
    return TransportError(ErrorKind.INTERNAL, f"{type(exc).__name__} from {endpoint}: {exc}")


class OpenAIBackend:
    """Chat completions against one or more OpenAI-compatible endpoints.

    Args:
        settings: Gateway settings; ``endpoints`` empty means the SDK's default (OpenAI).
    """

    name = "openai"

    def __init__(self, settings: LLMSettings):
        self.settings = settings
        self.model = settings.model_name
        key = settings.api_key.get_secret_value() if settings.api_key else "not-needed"
        self._key = key
        urls: list[str | None] = [*settings.endpoints] or [None]
        forced = settings.structured_mode if settings.structured_mode != "auto" else None
        endpoints = [
            Endpoint(
                url=url or "https://api.openai.com/v1",
                client=openai.AsyncOpenAI(
                    # Off: the retry layer retries, once, metered (see personahub.llm.retry).
                    base_url=url,
                    api_key=key,
                    timeout=settings.timeout_s,
                    max_retries=0,
                ),
                mode=forced or "json_schema",
                mode_known=forced is not None,
            )
            for url in urls
        ]
        self.pool = EndpointPool(endpoints)
        # Schema objects come from the gateway's per-class table, so identity is stable.
        self._grammar_schemas: dict[tuple[int, str], tuple[Any, Any]] = {}
        self.endpoints = self.pool.endpoints
        self.options = OptionScorer(
            self.model, self.pool.pick, self.complete, settings.option_samples, _classify
        )
        self.capabilities = Capabilities(
            structured_modes=self.modes,
            endpoint_usage=self.endpoint_usage,
            preflight=self.preflight,
            option_logprobs=self.options.score,
        )

    @property
    def failovers(self) -> int:
        """Requests moved from an endpoint that stopped answering to another one."""
        return self.pool.failovers

    def _sent(self, call: BackendCall, mode: str) -> Any:
        """The grammar-safe schema for ``call`` in ``mode``, computed once per schema: in
        ``json_object`` mode also with small integer ranges as enums, which llama.cpp's
        server enforces where it ignores ``minimum``/``maximum``."""
        key = (id(call.schema), mode)
        entry = self._grammar_schemas.get(key)
        if entry is None or entry[0] is not call.schema:
            sent = grammar_schema(call.schema)
            if mode == "json_object":
                sent = bounded_integers_as_enums(sent)
            entry = (call.schema, sent)
            self._grammar_schemas[key] = entry
        return entry[1]

    def _request(self, call: BackendCall, mode: str) -> tuple[dict[str, Any], list[Message]]:
        messages = call.messages
        kwargs: dict[str, Any] = {
            "model": self.model,
            "temperature": call.temperature,
            "max_tokens": call.max_tokens,
        }
        if call.seed is not None:
            kwargs["seed"] = call.seed
        if call.schema is not None:
            # A llama.cpp server builds a grammar from the response_format schema in both
            # modes and dies on one it cannot take: send the loosened schema there (the
            # answer is validated against the full one), the full one in the instructions.
            if mode == "json_schema":
                kwargs["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": call.schema_name, "schema": self._sent(call, mode)},
                }
            else:
                note = prompts.render("llm/json_instructions", schema=call.schema)
                messages = _with_system_note(messages, note)
                if mode == "json_object":
                    kwargs["response_format"] = {
                        "type": "json_object",
                        "schema": self._sent(call, mode),
                    }
        kwargs["messages"] = messages
        return kwargs, messages

    async def complete(self, call: BackendCall) -> BackendReply:
        """Send ``call``, moving it to another endpoint while the chosen ones do not answer.

        Raises:
            TransportError: The request failed, or no endpoint left to move it to answered
                (the client's retries then take over, with backoff).
        """
        endpoint = self.pool.pick()
        assert endpoint is not None
        tried: list[Endpoint] = []
        while True:
            try:
                return await self._complete_at(endpoint, call)
            except TransportError:
                endpoint.errors += 1
                raise
            except _EndpointDown as down:
                endpoint.errors += 1
                self.pool.rest(endpoint)
                tried.append(endpoint)
                target = self.pool.pick(exclude=tried)
                if target is None:
                    raise down.error from None
                self.pool.moved(endpoint, target)
                log.info("moving a request from %s to %s: %s", endpoint.label, target.label, down)
                endpoint = target

    async def _complete_at(self, endpoint: Endpoint, call: BackendCall) -> BackendReply:
        if call.schema is None or endpoint.mode_known:
            return await self._send(endpoint, call)
        # The first structured request learns the mode alone; the ones waiting here then
        # go out in the mode it settled on (or learn it themselves if it failed).
        async with endpoint.learning:
            if endpoint.mode_known:
                return await self._send(endpoint, call)
            reply = await self._send(endpoint, call)
            endpoint.mode_known = True
            return reply

    async def _send(self, endpoint: Endpoint, call: BackendCall) -> BackendReply:
        endpoint.in_flight += 1
        mode = endpoint.mode
        try:
            while True:
                kwargs, sent = self._request(call, mode)
                try:
                    # The SDK's low-level post: same transport, auth, timeouts and error
                    # classes as chat.completions.create, without re-walking the typed
                    # request (the whole JSON schema) and building a response model per
                    # call, which cost more CPU than the rest of the gateway together.
                    raw = await endpoint.client.post(
                        "/chat/completions", cast_to=bytes, body=kwargs
                    )
                    break
                except openai.APIStatusError as exc:
                    if call.schema is not None and _is_format_refusal(exc):
                        # Step on from the mode this request used; concurrent requests may
                        # have moved the endpoint on already, and must not skip a mode.
                        remembered = STRUCTURED_MODES.index(endpoint.mode)
                        nxt = max(STRUCTURED_MODES.index(mode) + 1, remembered)
                        if nxt < len(STRUCTURED_MODES):
                            mode = STRUCTURED_MODES[nxt]
                            if nxt > remembered:
                                endpoint.mode = mode
                                endpoint.mode_changes.append(mode)
                            continue
                    if exc.status_code in _DOWN_STATUSES:
                        raise _EndpointDown(_classify(exc, endpoint.label)) from None
                    raise _classify(exc, endpoint.label) from None
                except openai.APIConnectionError as exc:  # timeouts included
                    raise _EndpointDown(_classify(exc, endpoint.label)) from None
                except openai.OpenAIError as exc:
                    raise _classify(exc, endpoint.label) from None
        finally:
            endpoint.in_flight -= 1
        endpoint.calls += 1
        endpoint.failures = 0
        try:
            data = json.loads(raw)
            choices = data.get("choices") or [{}]
            text = (choices[0].get("message") or {}).get("content") or ""
        except (ValueError, AttributeError, TypeError):
            raise TransportError(
                ErrorKind.SERVER_ERROR,
                f"{endpoint.label} sent a reply that is not a chat completion",
                endpoint=endpoint.label,
            ) from None
        usage = data.get("usage") or {}
        reported = (
            Usage(usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0)
            if usage
            else Usage(0, max(1, len(text) // 4))
        )
        return BackendReply(
            text=text,
            usage=reported,
            endpoint=endpoint.label,
            messages=tuple(sent) if sent is not call.messages else (),
        )

    async def preflight(self) -> None:
        """Refuse a base URL that is not http(s), and a run where no endpoint answers one
        models-list request (short timeout, no retries: one line instead of a run of
        failed calls). Without a configured model, take the one the server serves.

        Raises:
            ConfigError: A bad URL, no endpoint answering, or several models served and
                none chosen.
        """
        for endpoint in self.endpoints:
            parsed = urlsplit(endpoint.url)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise ConfigError(
                    f"base URL {endpoint.label} is not an http(s) URL "
                    "(expected e.g. http://localhost:8080/v1)"
                )
        failures: list[str] = []
        for endpoint in self.endpoints:
            try:
                served = await self._served_models(endpoint)
            except openai.APIStatusError:
                served = []  # it answered: a server without /models is still a server
            except openai.OpenAIError as exc:
                failures.append(_classify(exc, endpoint.label).message)
                continue
            if self.settings.model is None:
                self.model = _served_model(served, endpoint.label, self.model)
            return
        raise ConfigError(f"no endpoint answers: {'; '.join(failures)}")

    async def _served_models(self, endpoint: Endpoint) -> list[str]:
        """The model ids ``endpoint`` lists. A client of its own, closed here: the check may
        run on an event loop other than the one the requests will use."""
        async with openai.AsyncOpenAI(
            base_url=endpoint.url,
            api_key=self._key,
            timeout=PREFLIGHT_TIMEOUT_S,
            max_retries=0,
        ) as client:
            page = await client.models.list()
        return [model.id for model in page.data if getattr(model, "id", None)]

    def endpoint_usage(self) -> dict[str, Any]:
        """Per-endpoint errors, failovers and rests, and the failover moves (from, to, calls);
        the client merges them into its usage snapshot."""
        return self.pool.usage()

    def modes(self) -> dict[str, str]:
        """The structured-output mode currently used per endpoint."""
        return {e.label: e.mode for e in self.endpoints}

    async def aclose(self) -> None:
        for endpoint in self.endpoints:
            await endpoint.client.close()


def _with_system_note(messages: list[Message], note: str) -> list[Message]:
    if messages and messages[0].get("role") == "system":
        first = {"role": "system", "content": f"{messages[0]['content']}\n\n{note}"}
        return [first, *messages[1:]]
    return [{"role": "system", "content": note}, *messages]


def _served_model(served: list[str], label: str, default: str) -> str:
    """The model to record for a server listing ``served`` when none was configured.

    Raises:
        ConfigError: It serves several: one must be chosen.
    """
    if len(served) == 1:
        return served[0]
    if not served:
        log.warning("%s lists no models; recording the model as %s", label, default)
        return default
    shown = ", ".join(served[:_LISTED_MODELS])
    if len(served) > _LISTED_MODELS:
        shown += f", and {len(served) - _LISTED_MODELS} more"
    raise ConfigError(f"{label} serves {len(served)} models ({shown}); choose one with --model")
