"""The JSON schema a grammar is built from: the request's schema, loosened where llama.cpp
cannot take it.

llama.cpp (in-process through llama-cpp-python, or behind a llama.cpp server) turns a JSON
schema into a GBNF grammar and expands every bounded repetition ``x{m,n}`` into ``n - m``
nested optional rules. Past roughly a thousand of them its grammar parser refuses the grammar
("number of repetitions exceeds sane defaults"); llama-cpp-python does not check the refusal
and the next decoding step segfaults, and a server dies the same way. A free-text field of up
to 1,200 characters (``maxLength`` or a ``pattern`` such as ``[^"]{40,1200}``) is enough.

:func:`grammar_schema` therefore rewrites wide repetitions as open-ended ones (``{m,}``,
which llama.cpp builds as ``m`` copies and a star) and drops wide ``maxLength``/``maxItems``.
The grammar then accepts a superset of what the schema does; the gateway validates every
answer against the full schema after decoding, and the re-ask layer re-asks on a violation,
so nothing the schema forbids gets through.

It also tightens what a grammar can enforce and llama.cpp's converter ignores: an integer with
a small ``minimum``..``maximum`` range becomes an enum of its values
(:func:`bounded_integers_as_enums`), so a 1-5 answer cannot come out as 102. The embedded
model and a server in ``json_object`` mode (llama.cpp's server builds its grammar from the
schema riding along) get both; a server that takes ``json_schema`` enforces ranges itself.
"""

from __future__ import annotations

import re
from typing import Any

# llama.cpp refused a 1,160-wide span and took an 800-wide one (llama-cpp-python 0.3.36);
# half of that leaves room for several such fields in one grammar.
GRAMMAR_MAX_SPAN = 400

# A regex quantifier {m}, {m,} or {m,n}, not an escaped literal brace.
_QUANTIFIER = re.compile(r"(?<!\\)\{(\d+)(?:(,)(\d*))?\}")


def _loosen_quantifier(match: re.Match[str]) -> str:
    low = int(match.group(1))
    high = int(match.group(3)) if match.group(3) else None
    if match.group(2) is None:  # {m}: exactly m
        high = low
    if low <= GRAMMAR_MAX_SPAN and (high is None or high - low <= GRAMMAR_MAX_SPAN):
        return match.group(0)
    # Open-ended from at most the limit: always a superset of the original span.
    return f"{{{min(low, GRAMMAR_MAX_SPAN)},}}"


def loosen_pattern(pattern: str) -> str:
    """``pattern`` with every repetition wider than :data:`GRAMMAR_MAX_SPAN` made open-ended."""
    return _QUANTIFIER.sub(_loosen_quantifier, pattern)


def _too_wide(node: dict[str, Any], low_key: str, high_key: str) -> bool:
    high = node.get(high_key)
    return isinstance(high, int) and high - int(node.get(low_key, 0)) > GRAMMAR_MAX_SPAN


def grammar_schema(schema: Any) -> Any:
    """A copy of ``schema`` that llama.cpp can build a grammar from and that accepts
    everything ``schema`` accepts (wide repetitions loosened; see the module docstring)."""
    return _loosened(schema)


def bounded_integers_as_enums(schema: Any, max_span: int = 200) -> Any:
    """Rewrite ``{"type": "integer", "minimum": a, "maximum": b}`` as an enum of a..b.

    llama.cpp's schema-to-grammar converter ignores numeric bounds; an enum it enforces, so a
    likert answer or an age can never come out of range.
    """
    if isinstance(schema, list):
        return [bounded_integers_as_enums(item, max_span) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: bounded_integers_as_enums(v, max_span) for k, v in schema.items()}
    if out.get("type") == "integer" and "enum" not in out:
        low = out.get("minimum", out["exclusiveMinimum"] + 1 if "exclusiveMinimum" in out else None)
        high = out.get(
            "maximum", out["exclusiveMaximum"] - 1 if "exclusiveMaximum" in out else None
        )
        if low is not None and high is not None and 0 <= high - low <= max_span:
            out = {k: v for k, v in out.items() if "imum" not in k}
            out["enum"] = list(range(int(low), int(high) + 1))
    return out


def _loosened(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_loosened(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _loosened(value) for key, value in schema.items()}
    if isinstance(out.get("pattern"), str):
        out["pattern"] = loosen_pattern(out["pattern"])
    for low_key, high_key in (("minLength", "maxLength"), ("minItems", "maxItems")):
        if _too_wide(out, low_key, high_key):
            del out[high_key]
        if isinstance(out.get(low_key), int) and out[low_key] > GRAMMAR_MAX_SPAN:
            out[low_key] = GRAMMAR_MAX_SPAN
    return out
