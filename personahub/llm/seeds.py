"""Request identity helpers shared by every caller of the gateway.

:func:`request_seed` fixes a sampling seed from what a request is about (a run seed, a step,
an agent; a text and an angle), so reruns ask the very same question even without the response
cache. :func:`plain_text` is the JSON-schema pattern for one line of free text that llama.cpp's
grammar can enforce.
"""

from __future__ import annotations

import hashlib


def request_seed(*parts: object) -> int:
    """A stable, non-negative 31-bit sampling seed from the request's identity."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def plain_text(max_chars: int, min_chars: int = 0) -> str:
    """A pattern for one line of ``min_chars`` to ``max_chars`` characters without quotes or
    backslashes. Without it llama.cpp's grammar lets raw newlines into strings, which is
    not valid JSON, and the answer is lost; the grammar enforces the bounds of the pattern."""
    return rf'^[^"\\\n\r\t]{{{min_chars},{max_chars}}}$'
