"""Turn a model's reply into a validated pydantic instance, repairing trivial damage.

Trivial repairs: code fences, prose around the object, trailing commas, and a reply cut off
before its closing brackets. Anything else is a re-ask, decided by the caller.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from personahub.llm.types import ErrorKind

T = TypeVar("T", bound=BaseModel)

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


class ParseFailure(Exception):
    """The reply could not be turned into the schema; ``kind`` says how it failed."""

    def __init__(self, kind: ErrorKind, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


def _close_truncated(text: str) -> str:
    """Close strings and brackets left open by a reply that ran out of tokens."""
    stack: list[str] = []
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
    tail = '"' if in_string else ""
    body = (text + tail).rstrip()
    body = body.rstrip(",").rstrip(":")
    return body + "".join(reversed(stack))


def _candidates(text: str) -> list[str]:
    out = [text.strip()]
    fenced = _FENCE.search(text)
    if fenced:
        out.append(fenced.group(1).strip())
    start = text.find("{")
    if start >= 0:
        end = text.rfind("}")
        if end > start:
            out.append(text[start : end + 1])
        out.append(_close_truncated(text[start:]))
    return out


def extract_json(text: str) -> Any:
    """The first JSON object found in ``text`` after trivial repairs.

    Raises:
        ParseFailure: kind ``invalid_json`` when nothing parses.
    """
    for candidate in _candidates(text):
        for attempt in (candidate, _TRAILING_COMMA.sub(r"\1", candidate)):
            try:
                # strict=False: raw newlines inside strings (a grammar lets them through)
                return json.loads(attempt, strict=False)
            except json.JSONDecodeError:
                continue
    snippet = text.strip().replace("\n", " ")[:120]
    raise ParseFailure(ErrorKind.INVALID_JSON, f"reply is not JSON: {snippet!r}")


def parse_structured(text: str, schema: type[T]) -> T:
    """Validate ``text`` against ``schema``, after trivial repairs.

    Raises:
        ParseFailure: ``invalid_json`` or ``schema_violation`` with a short cause.
    """
    try:
        return schema.model_validate_json(text)
    except ValidationError:
        pass
    data = extract_json(text)
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ParseFailure(_kind_of(exc), summarize_errors(exc, schema)) from None


def _kind_of(exc: ValidationError) -> ErrorKind:
    """``schema_violation``, or the gateway error kind a validator named as its custom error
    type (e.g. ``empty_answer``) when every error is of that kind."""
    kinds = {err["type"] for err in exc.errors()}
    if len(kinds) == 1:
        (kind,) = kinds
        if kind in ErrorKind.__members__.values():
            return ErrorKind(kind)
    return ErrorKind.SCHEMA_VIOLATION


def summarize_errors(
    exc: ValidationError, schema: type[BaseModel] | None = None, limit: int = 4
) -> str:
    """A compact description of validation errors, for re-ask prompts and error values.

    Each names the field, what is allowed (the field's range, when ``schema`` gives one) and
    the value found, so a re-ask tells the model exactly what to change: a model told only
    "less than or equal to 5" tends to send 27 after 102.
    """
    tree = _schema_tree(schema) if schema is not None else {}
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        notes = []
        allowed = _allowed_range(tree, err["loc"])
        if allowed:
            notes.append(f"allowed {allowed}")
        found = err.get("input")
        if isinstance(found, (str, int, float, bool)) or found is None:
            notes.append(f"found {_short(found)}")
        parts.append(f"{loc}: {err['msg']}" + (f" ({', '.join(notes)})" if notes else ""))
    more = len(exc.errors()) - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


@functools.lru_cache(maxsize=256)
def _schema_tree(schema: type[BaseModel]) -> dict[str, Any]:
    # Milliseconds per call, and a batch of failing replies asks for the same class's schema
    # again and again.
    return schema.model_json_schema()


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + '..."'


def _allowed_range(tree: dict[str, Any], loc: tuple[Any, ...]) -> str | None:
    """``"1 to 5"`` for a field of JSON schema ``tree`` at ``loc`` with both numeric
    bounds, ``">= 1"``/``"<= 5"`` for one; None for a field without bounds."""
    node: Any = tree
    for part in loc:
        node = _deref(tree, node)
        if isinstance(part, int):
            node = node.get("items", {})
        else:
            node = node.get("properties", {}).get(part, {})
    node = _deref(tree, node)
    low = node.get("minimum", node.get("exclusiveMinimum"))
    high = node.get("maximum", node.get("exclusiveMaximum"))
    if low is not None and high is not None:
        return f"{low} to {high}"
    if low is not None:
        return f">= {low}"
    return f"<= {high}" if high is not None else None


def _deref(tree: dict[str, Any], node: Any) -> dict[str, Any]:
    """``node`` with a ``$ref`` (or a lone ``allOf`` ref, as pydantic writes them)
    followed into ``tree``'s ``$defs``."""
    if not isinstance(node, dict):
        return {}
    if len(node.get("allOf", ())) == 1:
        node = node["allOf"][0]
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return dict(tree.get("$defs", {}).get(ref.rsplit("/", 1)[1], {}))
    return dict(node)
