"""The fake server's HTTP responses: JSON bodies and errors in the OpenAI API's shape
(scripted ones, and llama.cpp's refusal of a response format)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    422: "invalid_request_error",
    429: "requests",
}


def error_response(
    status: int,
    message: str,
    *,
    error_type: str | None = None,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """An error in the OpenAI API's shape (``{"error": {message, type, param, code}}``)."""
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


def json_response(payload: Any, status: int = 200) -> web.Response:
    """A JSON body."""
    return web.Response(
        status=status, body=json.dumps(payload).encode(), content_type="application/json"
    )


def action_error(status: int, action: dict[str, Any]) -> web.Response:
    """The error a queued action scripts (``{"status": 429, "retry_after": ...}``)."""
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
    return error_response(
        status,
        str(action.get("message", default_message)),
        code="rate_limit_exceeded" if status == 429 else None,
        headers=headers or None,
    )


def refusal(kind: str) -> web.Response:
    """The answer to a response format the server is told to refuse."""
    # Same status and wording as llama.cpp's server, which is what we emulate.
    return error_response(
        500,
        f"response_format type {kind} is not supported",
        error_type="server_error",
        param="response_format",
    )
