"""Credentials in URLs: the one place that hides them.

A URL may carry a password in its user info: a database URL
(``postgresql://user:pw@host/db``) or a model server's base URL
(``http://user:key@host/v1``, or a token alone: ``http://key@host/v1``). Everything that
prints, stores or labels such a URL (error messages, run databases, usage keys, reports,
``llm check``) shows :func:`mask_url`'s form, and scrubs :func:`url_secrets` from free text
it did not build itself (a driver's message quoting the URL back).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "***"


def _secret(url: str) -> tuple[str, str] | None:
    """The user info's secret and the user info to show instead, or None. A password is the
    secret; on an http(s) URL a user without a password is one too, since model servers take
    tokens that way (``http://TOKEN@host/v1``); a database user name stays visible."""
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:  # a malformed port or bracket: no user info we can find
        return None
    if password:
        return password, f"{parts.netloc.rpartition('@')[0].split(':', 1)[0]}:{MASK}"
    if user and parts.scheme.lower() in ("http", "https"):
        return user, MASK
    return None


def mask_url(url: str) -> str:
    """``url`` with its secret user info (see :func:`_secret`) replaced by ``***``; anything
    else comes back unchanged."""
    found = _secret(url)
    if found is None:
        return url
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{found[1]}@{host}"))


def url_secrets(urls: Iterable[str]) -> list[str]:
    """The secrets in ``urls`` (as written, and URL-decoded), to scrub from free text."""
    found: list[str] = []
    for url in urls:
        secret = _secret(url)
        if secret is not None:
            found.extend(dict.fromkeys((secret[0], unquote(secret[0]))))
    return found
