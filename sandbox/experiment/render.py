"""Variables in scenario text and arm overrides merged into the base scenario.

Both work on plain YAML data (dicts, lists, scalars) and report problems as the loader's
``(field path, message, found)`` triples, so errors point at the line that caused them.

Variables are a minimal substitution, never a template language: ``{{ name }}`` is replaced by
the variable's value and nothing in a scenario file can run code. A string that is exactly one
variable takes the value's type (``activation: "{{ act }}"`` becomes a number).
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.scenario import Problem

VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
Scalar = str | int | float | bool


def render(
    value: Any, variables: dict[str, Scalar], loc: tuple[Any, ...]
) -> tuple[Any, list[Problem]]:
    """``value`` with every ``{{ name }}`` in its strings replaced; unknown names are problems."""
    problems: list[Problem] = []

    def walk(node: Any, where: tuple[Any, ...]) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, (*where, k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, (*where, i)) for i, v in enumerate(node)]
        if not isinstance(node, str) or "{{" not in node:
            return node
        unknown = [m for m in VARIABLE.findall(node) if m not in variables]
        if unknown:
            known = ", ".join(sorted(variables)) or "none"
            problems.append((where, f"unknown variable '{unknown[0]}' (defined: {known})", None))
            return node
        whole = VARIABLE.fullmatch(node.strip())
        if whole:
            return variables[whole.group(1)]
        return VARIABLE.sub(lambda m: str(variables[m.group(1)]), node)

    return walk(value, loc), problems


def merge(base: Any, override: Any, loc: tuple[Any, ...]) -> tuple[Any, list[Problem]]:
    """``override`` deep-merged into ``base`` (neither is changed).

    Mappings merge key by key. A list is replaced by a list, or edited by a mapping whose keys
    pick its elements: a number (``"0"``) picks by position, any other key the element whose
    ``id`` it is (a question). Anything else replaces the base value.
    """
    problems: list[Problem] = []

    def walk(old: Any, new: Any, where: tuple[Any, ...]) -> Any:
        if isinstance(old, dict) and isinstance(new, dict):
            out = dict(old)
            for key, value in new.items():
                out[key] = walk(old[key], value, (*where, key)) if key in old else value
            return out
        if isinstance(old, list) and isinstance(new, dict):
            out_list = list(old)
            ids = [item.get("id") if isinstance(item, dict) else None for item in old]
            for key, value in new.items():
                index = int(key) if str(key).isdigit() else None
                if index is None and key in ids:
                    index = ids.index(key)
                if index is None or index >= len(old):
                    what = f"0..{len(old) - 1}" if old else "no elements"
                    named = [str(i) for i in ids if i is not None]
                    if named:
                        what += " or one of " + ", ".join(named)
                    problems.append(((*where, key), f"no such element: expected {what}", key))
                    continue
                out_list[index] = walk(old[index], value, (*where, key))
            return out_list
        return new

    return walk(base, override, loc), problems


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in place: mappings on the way are created, a number picks a list element.

    Raises:
        ValueError: The path runs through a value that is neither (one line).
    """
    *parents, last = dotted.split(".")
    node: Any = data
    for part in [*parents, last]:
        if not isinstance(node, dict | list):
            raise ValueError(f"{dotted}: {part!r} is inside a value that is not a mapping or list")
        if isinstance(node, list) and not (part.isdigit() and int(part) < len(node)):
            raise ValueError(f"{dotted}: expected an element number below {len(node)} at {part!r}")
        if part is last:
            break
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
