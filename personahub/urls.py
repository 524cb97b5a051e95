"""Credentials in URLs: the one place that hides them.

A URL may carry a password in its user info: a database URL
(``postgresql://user:pw@host/db``) or a model server's base URL
(``http://user:key@host/v1``). Everything that prints, stores or labels such a URL (error
messages, run databases, usage keys, reports, ``llm check``) shows :func:`mask_url`'s form, and
scrubs :func:`url_secrets` from free text it did not build itself (a driver's message quoting
the URL back).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "***"


def mask_url(url: str) -> str:
    """``url`` with the password of its user info replaced by ``***`` (anything that is not a
    URL with a password comes back unchanged)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # a malformed port or bracket: no user info we can find
        return url
    if not password:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


def url_secrets(urls: Iterable[str]) -> list[str]:
    """The passwords in ``urls`` (as written, and URL-decoded), to scrub from free text."""
    found: list[str] = []
    for url in urls:
        try:
            parts = urlsplit(url)
            password = parts.password
        except ValueError:
            continue
        if password:
            found.extend(dict.fromkeys((password, unquote(password))))
    return found
