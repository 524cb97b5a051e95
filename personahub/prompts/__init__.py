"""Prompt templates, kept as files and rendered in one way.

Each package keeps its templates in its own ``prompts/`` folder as Jinja2 files (``*.j2``).
Values are inserted as data: a persona containing braces or instructions stays literal text,
because Jinja2 never re-evaluates what it substitutes. Undefined variables are errors.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import jinja2


@functools.cache
def _environment(package: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(package, "prompts"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["tojson"] = lambda value: json.dumps(value, ensure_ascii=False)
    return env


def render(name: str, package: str = "personahub", **variables: Any) -> str:
    """Render the template ``<package>/prompts/<name>.j2``.

    Args:
        name: Template name without the ``.j2`` suffix, e.g. ``"llm/json_instructions"``.
        package: The package holding the ``prompts`` folder.
        **variables: Values for the template.
    """
    return _environment(package).get_template(f"{name}.j2").render(**variables).strip()


def source(name: str, package: str = "personahub") -> str:
    """The raw text of template ``<package>/prompts/<name>.j2`` (for version hashes)."""
    env = _environment(package)
    assert env.loader is not None
    text, _, _ = env.loader.get_source(env, f"{name}.j2")
    return text
