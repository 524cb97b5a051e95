"""Reading scenario files: YAML 1.2, checks across fields, and errors that point at the line.

The schema is the union of the modes' scenario classes (:func:`sandbox.modes.scenario_adapter`),
so a field of another mode is an unknown field here, named as such; checks across fields are
each scenario class's :meth:`~sandbox.scenario.ScenarioBase.problems`.

:func:`load_scenario` raises :class:`ScenarioError` whose message names the file, the line,
the field, what was expected and what was found, one line per problem, never a traceback.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from sandbox.forecast.scenario import QUESTION_ID
from sandbox.modes import DEFAULT_MODE, MODES, scenario_adapter
from sandbox.scenario import SCENARIO_NAME, ScenarioBase, ScenarioError

__all__ = ["ScenarioError", "load_scenario", "parse_scenario", "validate_scenario"]


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. YAML 1.1 would turn `options: [yes, no]` into bools."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _no_duplicate_keys(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key '{key}' (the later value would win)",
                key_node.start_mark,
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicate_keys)


def _node_at(
    root: yaml.Node | None, loc: tuple[Any, ...], union_tags: set[str]
) -> tuple[yaml.Node | None, tuple[Any, ...]]:
    """The deepest YAML node along ``loc`` and the path to it as the user wrote it.

    Parts of ``loc`` that are pydantic union tags (``graph.watts_strogatz.k``) are skipped.
    """
    node = root
    path: list[Any] = []
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == str(part)), None)
            if child is None and str(part) in union_tags:
                continue
            path.append(part)
            if child is None:
                # an unknown or missing field: point at its key, or at its parent mapping
                key = next((k for k, _ in node.value if k.value == str(part)), None)
                return (key or node), tuple(path)
            node = child
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            path.append(part)
            if part >= len(node.value):
                return node, tuple(path)
            node = node.value[part]
        else:
            path.append(part)
    return node, tuple(path)


def _members(annotation: Any) -> list[Any]:
    """The concrete types inside Annotated / Optional / unions / lists."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, dict):
        args = typing.get_args(annotation)
        if origin is dict:
            args = args[1:]
        return [m for arg in args for m in _members(arg)]
    return [annotation]


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class whose fields an error location points into (``loc`` starts with the
    mode, the scenario union's tag)."""
    if not loc or loc[0] not in MODES:
        return None
    current: list[Any] = [MODES[loc[0]].scenario]
    for part in loc[1:]:
        models = [m for m in current if isinstance(m, type) and issubclass(m, BaseModel)]
        if isinstance(part, int):
            continue
        tagged = [
            m
            for m in models
            if "type" in m.model_fields
            and part in typing.get_args(m.model_fields["type"].annotation)
        ]
        if tagged:
            current = tagged
            continue
        owners = [m for m in models if part in m.model_fields]
        if not owners:
            break
        current = _members(owners[0].model_fields[part].annotation)
    models = [m for m in current if isinstance(m, type) and issubclass(m, BaseModel)]
    return models[0] if len(models) == 1 else None


_PATTERNS = {
    QUESTION_ID: "a lowercase id: a letter, then letters, digits or _ (at most 32)",
    SCENARIO_NAME: "a name of letters, digits, '.', '_' or '-' (at most 64)",
}


def _describe(err: ErrorDetails) -> tuple[tuple[Any, ...], str, Any]:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    kind = err["type"]
    found = err.get("input")
    if kind == "extra_forbidden":
        name = str(loc[-1])
        owner = _other_mode_with(loc)
        if owner:
            verb = "are" if name.endswith("s") else "is"
            return loc, f"{name} {verb} for {owner} mode, not {loc[0]}", None
        model = _model_at(loc[:-1])
        allowed = sorted(model.model_fields) if model else []
        close = difflib.get_close_matches(name, allowed, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        if allowed:
            hint += f" (allowed here: {', '.join(allowed)})"
        return loc, f"unknown field '{name}'{hint}", None
    if kind == "string_pattern_mismatch":
        pattern = err.get("ctx", {}).get("pattern", "")
        return loc, f"expected {_PATTERNS.get(pattern, f'text matching {pattern}')}", found
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return loc, "expected a mapping of fields (key: value lines)", found
    if kind == "missing":
        return loc, "required field is missing", None
    if kind == "union_tag_invalid":
        ctx = err.get("ctx", {})
        field = str(ctx.get("discriminator", "'type'")).strip("'")
        return (*loc, field), f"expected one of {ctx.get('expected_tags', '')}", ctx.get("tag")
    if kind == "union_tag_not_found":
        return loc, "needs a `type` field", None
    message = err["msg"]
    message = message.replace("Value error, ", "")
    if message.startswith("Input should be"):
        message = "expected" + message[len("Input should be") :]
    for prefix in ("List should have", "String should have", "Value should have"):
        if message.startswith(prefix):
            message = "expected" + message[len(prefix) :].replace(" after validation", "")
    return loc, message, found


def _other_mode_with(loc: tuple[Any, ...]) -> str | None:
    """The mode whose scenario has the top-level field that ``loc`` (mode, field) names."""
    if len(loc) != 2:
        return None
    return next(
        (name for name, m in MODES.items() if name != loc[0] and loc[1] in m.scenario.model_fields),
        None,
    )


_UNION_TAGS = {
    *MODES,
    "persona_edges",
    "watts_strogatz",
    "barabasi_albert",
    "homophily",
    "choice",
    "likert",
    "number",
    "text",
}


def _format(path: Path, root: yaml.Node | None, loc: tuple[Any, ...], msg: str, found: Any) -> str:
    node, shown_loc = _node_at(root, loc, _UNION_TAGS)
    line = node.start_mark.line + 1 if node is not None else 1
    field = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in shown_loc)
    field = field.replace(".[", "[")
    shown = "" if found is None or isinstance(found, dict | list) else f" (found {found!r})"
    return f"{path}:{line}: {field or '(top level)'}: {msg}{shown}"


def parse_scenario(text: str, path: Path) -> ScenarioBase:
    """Validate scenario YAML text; ``path`` is used in error messages.

    Raises:
        ScenarioError: One line per problem.
    """
    try:
        root = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else 1
        context = ""
        if exc.context and exc.context_mark is not None:
            context = f" ({exc.context} at line {exc.context_mark.line + 1})"
        raise ScenarioError([f"{path}:{line}: not valid YAML: {exc.problem}{context}"]) from None
    if not isinstance(data, dict):
        found = type(data).__name__ if data is not None else "an empty file"
        raise ScenarioError([f"{path}:1: expected a mapping of scenario fields, found {found}"])
    return validate_scenario(data, path, root)


def _by_line(problems: list[str]) -> list[str]:
    def line_of(problem: str) -> int:
        match = re.match(r".*?:(\d+): ", problem)
        return int(match.group(1)) if match else 0

    return sorted(problems, key=line_of)


def validate_scenario(
    data: dict[str, Any], path: Path, root: yaml.Node | None = None
) -> ScenarioBase:
    """Validate scenario data (from a file, or a file plus CLI overrides).

    Raises:
        ScenarioError: One line per problem, in file order.
    """
    try:
        scenario = scenario_adapter().validate_python({"mode": DEFAULT_MODE, **data})
    except ValidationError as exc:
        raise ScenarioError(
            _by_line([_format(path, root, *_describe(e)) for e in exc.errors(include_url=False)])
        ) from None
    problems = scenario.problems()
    if problems:
        raise ScenarioError(_by_line([_format(path, root, *p) for p in problems]))
    return scenario


def load_scenario(path: str | Path) -> ScenarioBase:
    """Read and validate a scenario file.

    Raises:
        ScenarioError: The file is missing, not YAML, or not a valid scenario.
    """
    path = Path(path)
    if not path.is_file():
        raise ScenarioError([f"{path}: scenario file not found"])
    return parse_scenario(path.read_text(encoding="utf-8"), path).with_files(path)
