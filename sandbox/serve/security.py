"""Who may use ``sandbox serve``: loopback by default, a token for anything else.

* Binding another host than loopback needs an access token (given, or generated and printed);
  :func:`check_bind` refuses otherwise.
* With a token, every request carries it: ``?token=`` once (it becomes an HttpOnly,
  SameSite=Strict cookie), the cookie, or ``Authorization: Bearer``.
* Without one (loopback), the ``Host`` header must name loopback, so a web page elsewhere
  cannot reach the server through DNS rebinding.
* The only writes (interviews, surveys) are POSTs that need the same-origin header
  ``X-Sandbox`` and, when the browser sends one, an ``Origin`` equal to the server's own: a
  cross-site form or script cannot send them without a CORS preflight, which is never allowed.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

COOKIE = "sandbox_token"
WRITE_HEADER = "x-sandbox"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
"""The pages' Content-Security-Policy: no inline script or style can run, even if some text
were ever not escaped."""


class BindError(ValueError):
    """A bind the server refuses; one line."""


def is_loopback(host: str) -> bool:
    if host.strip("[]") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse a non-loopback ``host`` without a token."""
    if not is_loopback(host) and not token:
        raise BindError(
            f"refusing to serve on {host} without an access token: anyone who can reach it "
            "could read every run; pass --token TOKEN or --new-token (or bind 127.0.0.1)"
        )


def new_token() -> str:
    return secrets.token_urlsafe(24)


class Guard(BaseHTTPMiddleware):
    """The checks of the module docstring, plus the security headers of every response."""

    def __init__(self, app: object, token: str | None) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.token = token

    def _has_token(self, request: Request) -> bool:
        assert self.token is not None
        header = request.headers.get("authorization", "")
        given = [
            request.cookies.get(COOKIE, ""),
            header.removeprefix("Bearer ") if header.startswith("Bearer ") else "",
            request.query_params.get("token", ""),
        ]
        return any(g and hmac.compare_digest(g, self.token) for g in given)

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        host = (request.headers.get("host") or "").rsplit(":", 1)[0]
        if self.token is None and host not in LOOPBACK_NAMES:
            return PlainTextResponse("this server answers to localhost only", status_code=403)
        if self.token is not None and not self._has_token(request):
            return PlainTextResponse("access token needed (?token=...)", status_code=401)
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("origin")
            own = f"{request.url.scheme}://{request.headers.get('host', '')}"
            if request.headers.get(WRITE_HEADER) != "1" or (origin and origin != own):
                return PlainTextResponse("cross-site request refused", status_code=403)
        if self.token is not None and request.query_params.get("token"):
            # Drop the token from the address bar (and from what the page's links copy).
            response: Response = RedirectResponse(request.url.remove_query_params("token"), 303)
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
        else:
            response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response
