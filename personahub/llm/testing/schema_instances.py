"""Valid instances of JSON schemas, for the test doubles: deterministic, optionally varied.

:func:`generate_instance` fills a schema with a valid value; :func:`vary_strings` replaces its
free-text strings by words picked from a hash, so different prompts get different answers.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

# Recursive schemas (trees, linked lists) would otherwise recurse without bound.
_MAX_SCHEMA_DEPTH = 12
_FORMAT_SAMPLES = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "hostname": "example.com",
}


def generate_instance(schema: Any) -> Any:
    """Build a deterministic instance that validates against a JSON schema.

    Covers the subset pydantic v2 emits: local ``$ref`` (``#/$defs/...``), ``type``
    (including type lists), ``enum``, ``const``, ``anyOf``/``oneOf`` (first non-null
    branch), ``allOf``, object ``properties``/``required`` (all properties are filled),
    array ``items``/``prefixItems``/``minItems``/``maxItems``, numeric bounds
    (``minimum``, ``maximum``, ``exclusiveMinimum``, ``exclusiveMaximum``,
    ``multipleOf``), string ``minLength``/``maxLength`` and common ``format`` values.
    ``pattern`` is not supported.

    Args:
        schema: The JSON schema (the root, so that ``$ref`` can be resolved).

    Returns:
        A JSON-compatible Python value.
    """
    root = schema if isinstance(schema, dict) else {}
    return _gen(schema, root, 0, 0)


WORDS = [
    "amber",
    "basil",
    "cedar",
    "dune",
    "ember",
    "fjord",
    "garnet",
    "harbor",
    "indigo",
    "jasper",
    "kelp",
    "lagoon",
    "meadow",
    "nectar",
    "orchid",
    "pebble",
    "quartz",
    "raven",
    "saffron",
    "tundra",
    "umber",
    "violet",
    "willow",
    "yarrow",
    "zephyr",
    "acorn",
    "birch",
    "coral",
    "delta",
    "fern",
    "grove",
    "heath",
    "iris",
    "juniper",
    "lantern",
    "mill",
    "north",
    "oak",
]


def vary_strings(
    schema: Any, root: dict[str, Any], value: Any, salt: str, *, flags: bool = False
) -> Any:
    """Replace free-text strings of ``value`` (no enum, const, format or pattern other than a
    plain-line one) by words picked from a hash of ``salt`` and the field's path, keeping
    length bounds. With ``flags``, its booleans too are drawn from that hash (true for about
    half of the salts), as a model decides a flag (say, ending a conversation) per prompt
    rather than always the same way."""
    if isinstance(schema, dict) and "$ref" in schema:
        schema = _resolve_ref(schema["$ref"], root)
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        return {
            k: vary_strings(props.get(k), root, v, f"{salt}/{k}", flags=flags)
            for k, v in value.items()
        }
    if isinstance(value, list):
        items = schema.get("items")
        return [
            vary_strings(items, root, v, f"{salt}/{i}", flags=flags) for i, v in enumerate(value)
        ]
    free = not any(key in schema for key in ("enum", "const", "format"))
    digest = hashlib.blake2b(salt.encode(), digest_size=32).digest()
    if isinstance(value, bool) and flags and free:
        return digest[0] % 2 == 0
    pattern = schema.get("pattern", "")
    if isinstance(value, str) and free and (not pattern or pattern.startswith("^[^")):
        text = " ".join(WORDS[b % len(WORDS)] for b in digest)
        low, high = schema.get("minLength") or 0, schema.get("maxLength") or len(text)
        text = text[:high].rstrip()
        return text + "x" * max(0, low - len(text))
    return value


def _resolve_ref(ref: str, root: dict[str, Any]) -> Any:
    if not ref.startswith("#"):
        return {}  # remote refs are out of scope; an empty schema still yields a value
    node: Any = root
    for raw in ref[1:].split("/"):
        if not raw:
            continue
        part = raw.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return {}
        node = node[part]
    return node


def _is_null_schema(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null"


def _gen(schema: Any, root: dict[str, Any], depth: int, variant: int) -> Any:
    if not isinstance(schema, dict):
        return "sample text"  # `true` / missing schema: anything goes
    if "$ref" in schema:
        target = _resolve_ref(schema["$ref"], root)
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        merged = {**target, **siblings} if siblings and isinstance(target, dict) else target
        return _gen(merged, root, depth + 1, variant)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        values = [v for v in schema["enum"] if v is not None] or schema["enum"]
        return values[variant % len(values)]
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            non_null = [b for b in branches if not _is_null_schema(b)]
            if not non_null or (depth > _MAX_SCHEMA_DEPTH and len(non_null) < len(branches)):
                return None
            return _gen(non_null[0], root, depth + 1, variant)
    if isinstance(schema.get("allOf"), list):
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for sub in schema["allOf"]:
            if isinstance(sub, dict) and "$ref" in sub:
                sub = _resolve_ref(sub["$ref"], root)
            if isinstance(sub, dict):
                props = {**sub.get("properties", {}), **merged.get("properties", {})}
                required = [*sub.get("required", []), *merged.get("required", [])]
                merged = {**sub, **merged, "properties": props, "required": required}
        return _gen(merged, root, depth + 1, variant)

    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((t for t in kind if t != "null"), "null")
    if kind is None:
        if "properties" in schema or "required" in schema:
            kind = "object"
        elif "items" in schema or "prefixItems" in schema:
            kind = "array"
        else:
            kind = "string"

    if kind == "object":
        return _gen_object(schema, root, depth)
    if kind == "array":
        return _gen_array(schema, root, depth)
    if kind == "integer":
        return _gen_integer(schema, variant)
    if kind == "number":
        return _gen_number(schema, variant)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _gen_string(schema, variant)


def _gen_object(schema: dict[str, Any], root: dict[str, Any], depth: int) -> dict[str, Any]:
    required = set(schema.get("required") or ())
    out: dict[str, Any] = {}
    for name, sub in (schema.get("properties") or {}).items():
        if depth > _MAX_SCHEMA_DEPTH and name not in required:
            continue
        out[name] = _gen(sub, root, depth + 1, 0)
    for name in required:
        if name not in out:
            out[name] = "sample text"
    extra = schema.get("additionalProperties")
    extra_schema = extra if isinstance(extra, dict) else {}
    while len(out) < (schema.get("minProperties") or 0):
        out[f"key{len(out)}"] = _gen(extra_schema, root, depth + 1, len(out))
    return out


def _gen_array(schema: dict[str, Any], root: dict[str, Any], depth: int) -> list[Any]:
    min_items = schema.get("minItems")
    max_items = schema.get("maxItems")
    count = min_items if min_items is not None else 1
    if max_items is not None:
        count = min(count, max_items)
    if depth > _MAX_SCHEMA_DEPTH:
        count = min_items or 0
    prefix = schema.get("prefixItems") or []
    items = schema.get("items", {})
    out: list[Any] = []
    for i in range(count):
        if i < len(prefix):
            sub = prefix[i]
        elif items is False:
            break
        else:
            sub = items
        # A distinct variant per position keeps scalars unique, for `uniqueItems`.
        out.append(_gen(sub, root, depth + 1, i))
    return out


def _gen_string(schema: dict[str, Any], variant: int) -> str:
    fmt = schema.get("format")
    text = _FORMAT_SAMPLES.get(fmt, "sample text") if isinstance(fmt, str) else "sample text"
    if variant and fmt not in _FORMAT_SAMPLES:
        text = f"{text} {variant}"
    min_len = schema.get("minLength") or 0
    max_len = schema.get("maxLength")
    if len(text) < min_len:
        text += "x" * (min_len - len(text))
    if max_len is not None and len(text) > max_len:
        text = text[:max_len]
    return text


def _is_number(value: Any) -> bool:
    # Draft-4 boolean exclusive bounds are legal but pydantic never emits them.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _numeric_bounds(schema: dict[str, Any]) -> tuple[Any, bool, Any, bool]:
    """Return (low, low_exclusive, high, high_exclusive); bounds may be None."""
    low, low_excl = schema.get("minimum"), False
    exc_min = schema.get("exclusiveMinimum")
    if _is_number(exc_min) and (low is None or exc_min >= low):
        low, low_excl = exc_min, True
    high, high_excl = schema.get("maximum"), False
    exc_max = schema.get("exclusiveMaximum")
    if _is_number(exc_max) and (high is None or exc_max <= high):
        high, high_excl = exc_max, True
    return low, low_excl, high, high_excl


def _gen_integer(schema: dict[str, Any], variant: int) -> int:
    low, low_excl, high, high_excl = _numeric_bounds(schema)
    lo = None if low is None else (math.floor(low) + 1 if low_excl else math.ceil(low))
    hi = None if high is None else (math.ceil(high) - 1 if high_excl else math.floor(high))
    if lo is not None:
        value = lo + variant
    elif hi is not None:
        value = min(hi, 1) + variant
    else:
        value = 1 + variant
    if hi is not None:
        value = min(value, hi)
    step = schema.get("multipleOf")
    if isinstance(step, int) and step > 0:
        value = math.ceil(value / step) * step
        if hi is not None and value > hi:
            value -= step
    return int(value)


def _gen_number(schema: dict[str, Any], variant: int) -> float:
    low, low_excl, high, high_excl = _numeric_bounds(schema)
    if low is not None and high is not None:
        # The midpoint satisfies both bounds whether they are exclusive or not.
        value = (low + high) / 2
    elif low is not None:
        value = low + (1 if low_excl else 0) + variant
    elif high is not None:
        value = min(high - 1 if high_excl else high, 1.0) - variant
    else:
        value = 1.0 + variant
    step = schema.get("multipleOf")
    if isinstance(step, int | float) and step > 0:
        value = math.ceil(value / step) * step
    return float(value)


# --------------------------------------------------------------------------- helpers
