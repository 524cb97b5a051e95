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
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.nodes import MappingNode, Node, SequenceNode

from sandbox.forecast.scenario import QUESTION_ID
from sandbox.modes import DEFAULT_MODE, MODES, scenario_adapter
from sandbox.population import PopulationError, match_problems, source_problems
from sandbox.scenario import SCENARIO_NAME, FileProblem, Problem, ScenarioBase, ScenarioError
from sandbox.scenario_yaml import YAMLProblem, compose, construct, is_alias

__all__ = [
    "ScenarioError",
    "load_scenario",
    "parse_scenario",
    "problem_lines",
    "read_mapping",
    "read_scenario_file",
    "validate_scenario",
    "validation_problems",
]


def _node_at(
    root: Node | None, loc: tuple[Any, ...], union_tags: set[str]
) -> tuple[Node | None, tuple[Any, ...]]:
    """The YAML node to report a problem at ``loc`` on, and the path to it as the user wrote it.

    That is the deepest node along ``loc``, or the outermost alias passed on the way there (a
    problem inside an aliased value is where the alias uses it, not at the anchor). Parts of
    ``loc`` that are pydantic union tags (``graph.watts_strogatz.k``) are skipped.
    """
    node = root
    alias: Node | None = None
    path: list[Any] = []
    for part in loc:
        if isinstance(node, MappingNode):
            child = next((v for k, v in node.value if k.value == str(part)), None)
            if child is None and str(part) in union_tags:
                continue
            path.append(part)
            if child is None:
                # an unknown or missing field: point at its key, or at its parent mapping
                key = next((k for k, _ in node.value if k.value == str(part)), None)
                return alias or key or node, tuple(path)
            node = child
        elif isinstance(node, SequenceNode) and isinstance(part, int):
            path.append(part)
            if part >= len(node.value):
                return alias or node, tuple(path)
            node = node.value[part]
        else:
            path.append(part)
        if alias is None and is_alias(node):
            alias = node
    return alias or node, tuple(path)


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


def describe_error(err: ErrorDetails) -> Problem:
    """One validation error as (field location, message, found value), worded for a person."""
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
    "inline",
    "file",
    "persona_edges",
    "watts_strogatz",
    "barabasi_albert",
    "homophily",
    "choice",
    "likert",
    "number",
    "text",
}


QUOTE_LIMIT = 80
"""Characters of a found value quoted in a message; longer values are cut, with their length."""


def _quote(found: Any) -> str:
    shown = repr(found)
    if len(shown) <= QUOTE_LIMIT:
        return shown
    size = f"{len(found):,} characters" if isinstance(found, str) else f"{len(shown):,} long"
    return f"{shown[:QUOTE_LIMIT]}... ({size})"


def _format(path: Path, root: Node | None, loc: tuple[Any, ...], msg: str, found: Any) -> str:
    node, shown_loc = _node_at(root, loc, _UNION_TAGS)
    line = node.start_mark.line + 1 if node is not None else 1
    field = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in shown_loc)
    field = field.replace(".[", "[")
    shown = "" if found is None or isinstance(found, dict | list) else f" (found {_quote(found)})"
    return f"{path}:{line}: {field or '(top level)'}: {msg}{shown}"


def read_mapping(
    text: str, path: Path, what: str = "scenario"
) -> tuple[Node | None, dict[str, Any]]:
    """The node tree and data of scenario YAML text.

    Raises:
        ScenarioError: Not YAML a scenario can be read from, or not a mapping.
    """
    try:
        root = compose(text)
        data = construct(root) if root is not None else None
    except YAMLProblem as exc:
        raise ScenarioError([f"{path}:{exc.line}: {exc.message}"]) from None
    if not isinstance(data, dict):
        found = type(data).__name__ if data is not None else "an empty file"
        raise ScenarioError([f"{path}:1: expected a mapping of {what} fields, found {found}"])
    return root, data


def problem_lines(
    path: Path,
    root: Node | None,
    problems: list[Problem] | None = None,
    error: ValidationError | None = None,
    describe: Callable[[ErrorDetails], Problem] | None = None,
) -> list[str]:
    """``file:line: field: message`` lines, in file order, for the validation errors and the
    problems of any YAML file read with :func:`~sandbox.scenario_yaml.compose` (the scenario's,
    or another file a command reads, such as ``sandbox ssr-check``'s anchors).

    ``describe`` words one validation error (default :func:`describe_error`); a file with its
    own fields passes one that suggests them for unknown names."""
    describe = describe or describe_error
    lines = (
        [_format(path, root, *describe(e)) for e in error.errors(include_url=False)]
        if error
        else []
    )
    return _by_line(lines + [_format(path, root, *p) for p in problems or []])


def parse_scenario(text: str, path: Path) -> ScenarioBase:
    """Validate scenario YAML text; ``path`` is used in error messages.

    Raises:
        ScenarioError: One line per problem.
    """
    root, data = read_mapping(text, path)
    return validate_scenario(data, path, root)


def _by_line(problems: list[str]) -> list[str]:
    def line_of(problem: str) -> int:
        match = re.match(r".*?:(\d+): ", problem)
        return int(match.group(1)) if match else 0

    return sorted(problems, key=line_of)


def validation_problems(exc: ValidationError, prefix: tuple[Any, ...] = ()) -> list[Problem]:
    """The problems of a validation error of a section that sits at ``prefix`` in the file
    (sections other than the scenario's own, e.g. an experiment's)."""
    out = []
    for err in exc.errors(include_url=False):
        loc, message, found = describe_error(err)
        out.append(((*prefix, *loc), message, found))
    return out


EXPERIMENT_SECTIONS = ("experiment", "sweep")
"""Top-level sections of an experiment file (:mod:`sandbox.experiment.spec`), which a plain
run does not take."""


def validate_scenario(data: dict[str, Any], path: Path, root: Node | None = None) -> ScenarioBase:
    """Validate scenario data (from a file, or a file plus CLI overrides).

    Raises:
        ScenarioError: One line per problem, in file order.
    """
    try:
        scenario = scenario_adapter().validate_python({"mode": DEFAULT_MODE, **data})
    except ValidationError as exc:
        raise ScenarioError(
            _by_line(
                [_format(path, root, *describe_error(e)) for e in exc.errors(include_url=False)]
            )
        ) from None
    problems = scenario.problems()
    if problems:
        raise ScenarioError(_by_line([_format(path, root, *p) for p in problems]))
    return scenario


def read_scenario_file(path: Path) -> tuple[Node | None, dict[str, Any]]:
    """The node tree and data of a scenario file.

    Raises:
        ScenarioError: The file is missing or unreadable, not UTF-8 YAML, or not a mapping.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ScenarioError([f"{path}: scenario file not found"]) from None
    except IsADirectoryError:
        raise ScenarioError([f"{path}: is a directory, not a scenario file"]) from None
    except OSError as exc:  # a symbolic link loop, no permission, ...
        raise ScenarioError([f"{path}: cannot read the scenario file: {exc.strerror}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ScenarioError(
            [f"{path}:{line}: not a text file in UTF-8 (byte 0x{raw[exc.start]:02x})"]
        ) from None
    return read_mapping(text, path)


def load_scenario(path: str | Path) -> ScenarioBase:
    """Read and validate a scenario file, and check the population file it names.

    Raises:
        ScenarioError: The file is missing or unreadable, not YAML, or not a valid scenario
            (an experiment file says to run it with ``sandbox experiment``).
    """
    path = Path(path)
    root, data = read_scenario_file(path)
    sections = [s for s in EXPERIMENT_SECTIONS if s in data]
    if sections:
        message = f"this file describes an experiment: run it with `sandbox experiment {path}`"
        raise ScenarioError(problem_lines(path, root, [((sections[0],), message, None)]))
    return checked_scenario(path, root, data)


def checked_scenario(path: Path, root: Node | None, data: dict[str, Any]) -> ScenarioBase:
    """Validate scenario data read from ``path``, check its population source and read the
    files it names.

    Raises:
        ScenarioError: One line per problem, in file order.
    """
    scenario = validate_scenario(data, path, root)
    problems = source_problems(scenario.population, path.parent)
    if not problems:
        try:
            problems = match_problems(scenario.population, path.parent)
        except PopulationError as exc:
            problems = [(("population", "source"), str(exc), None)]
    try:
        scenario = scenario.with_files(path)
    except FileProblem as exc:
        problems.append(exc.problem)
    if problems:
        raise ScenarioError(_by_line([_format(path, root, *p) for p in problems]))
    return scenario
