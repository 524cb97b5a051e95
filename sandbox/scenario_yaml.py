"""Reading scenario YAML: a bounded, line-keeping reader for untrusted files.

PyYAML's loaders build Python objects straight from the file, which lets a few hundred bytes
of nested aliases expand into millions of values, lets deep nesting overflow the Python stack,
and accepts keys that a scenario cannot use (numbers, null, lists, the ``<<`` merge key). This
module builds the YAML node tree itself from the parser's events (libyaml's C parser when
present, which also keeps a 5 MB file fast), refusing all of these with the line they are on,
and then builds plain data from the nodes. The node tree is kept so that validation errors
can point at lines too.

Scalars follow YAML 1.2 booleans: only true/false (YAML 1.1 would turn ``options: [yes, no]``
into booleans).
"""

from __future__ import annotations

import re
from typing import Any, cast

import yaml
from yaml.constructor import SafeConstructor
from yaml.error import Mark
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_DEPTH = 100
"""Deepest nesting of lists and mappings accepted; scenario files need about ten."""

MAX_ALIAS_VALUES = 100_000
"""Most values that aliases (``*name``) may add to a file, counting nested aliases in full:
nested aliases multiply, and every copy must be validated."""

_Parser = getattr(
    yaml, "CSafeLoader", yaml.SafeLoader
)  # only its parser is used: libyaml's if there

_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_BOOL = "tag:yaml.org,2002:bool"


class YAMLProblem(ValueError):
    """The file cannot be read as scenario YAML. ``line`` is 1-based."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


class _Resolver(yaml.resolver.Resolver):
    """Implicit tags as PyYAML's safe loader resolves them, except YAML 1.1's yes/no/on/off."""


_Resolver.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL]
    for first, resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
}
_Resolver.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_RESOLVER = _Resolver()
_CONSTRUCTOR = SafeConstructor()


def _line(mark: Any) -> int:
    return mark.line + 1 if mark is not None else 1


def _mark(mark: Any) -> Mark | None:
    # libyaml's C parser gives its own Mark objects; they carry the line and column that
    # everything here reads, so nodes take them as they are.
    return cast(Mark | None, mark)


def _events(text: str) -> Any:
    parser = _Parser(text)
    try:
        while parser.check_event():
            yield parser.get_event()
    finally:
        parser.dispose()


def compose(text: str) -> Node | None:
    """The node tree of a one-document YAML text (None when empty).

    An alias becomes a copy of its anchor's node that carries the alias's own position, so
    that a problem in an aliased value is reported where the alias is used.

    Raises:
        YAMLProblem: Not YAML, more than one document, nesting deeper than
            :data:`MAX_DEPTH`, or aliases expanding beyond :data:`MAX_ALIAS_VALUES`.
    """
    anchors: dict[str, Node] = {}
    sizes: dict[int, int] = {}  # id(node) -> values it stands for, aliases expanded
    open_anchors: set[str] = set()
    stack: list[tuple[Node, str | None]] = []
    root: Node | None = None
    documents = 0
    expanded = 0

    def add(node: Node) -> None:
        nonlocal root
        if stack:
            stack[-1][0].value.append(node)
        else:
            root = node

    try:
        for event in _events(text):
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise YAMLProblem(
                        _line(event.start_mark), "expected one YAML document, found a second"
                    )
            elif isinstance(event, yaml.AliasEvent):
                if event.anchor in open_anchors:
                    raise YAMLProblem(
                        _line(event.start_mark),
                        f"alias *{event.anchor} is inside its own anchor (a value containing "
                        "itself)",
                    )
                if event.anchor not in anchors:
                    raise YAMLProblem(
                        _line(event.start_mark), f"alias *{event.anchor} has no anchor before it"
                    )
                target = anchors[event.anchor]
                expanded += sizes[id(target)]
                if expanded > MAX_ALIAS_VALUES:
                    raise YAMLProblem(
                        _line(event.start_mark),
                        f"aliases expand to more than {MAX_ALIAS_VALUES:,} values (nested "
                        "aliases multiply); write the values out",
                    )
                copy = type(target)(
                    target.tag, target.value, _mark(event.start_mark), _mark(event.end_mark)
                )
                # Nodes are plain objects; the flag rides in the instance dict (see is_alias).
                copy.__dict__["aliased"] = True
                sizes[id(copy)] = sizes[id(target)]
                add(copy)
            elif isinstance(event, yaml.ScalarEvent):
                tag = event.tag
                if tag is None or tag == "!":
                    tag = _RESOLVER.resolve(ScalarNode, event.value, event.implicit)
                scalar = ScalarNode(
                    tag, event.value, _mark(event.start_mark), _mark(event.end_mark), event.style
                )
                sizes[id(scalar)] = 1
                if event.anchor is not None:
                    anchors[event.anchor] = scalar
                add(scalar)
            elif isinstance(event, yaml.CollectionStartEvent):
                if len(stack) >= MAX_DEPTH:
                    raise YAMLProblem(
                        _line(event.start_mark), f"nested deeper than {MAX_DEPTH} levels"
                    )
                mapping = isinstance(event, yaml.MappingStartEvent)
                kind = MappingNode if mapping else SequenceNode
                tag = event.tag
                if tag is None or tag == "!":
                    tag = _RESOLVER.resolve(kind, None, event.implicit)
                collection = kind(tag, [], _mark(event.start_mark), None, event.flow_style)
                if event.anchor is not None:
                    anchors[event.anchor] = collection
                    open_anchors.add(event.anchor)
                add(collection)
                stack.append((collection, event.anchor))
            elif isinstance(event, yaml.CollectionEndEvent):
                closed, anchor = stack.pop()
                closed.end_mark = _mark(event.end_mark)
                if anchor is not None:
                    open_anchors.discard(anchor)
                sizes[id(closed)] = 1 + sum(sizes[id(child)] for child in closed.value)
                if isinstance(closed, MappingNode):
                    # the parser gives keys and values in turn; nodes hold (key, value) pairs
                    items = closed.value
                    closed.value = list(zip(items[0::2], items[1::2], strict=True))
    except yaml.MarkedYAMLError as exc:
        context = ""
        if exc.context and exc.context_mark is not None:
            context = f" ({exc.context} at line {_line(exc.context_mark)})"
        raise YAMLProblem(
            _line(exc.problem_mark), f"not valid YAML: {exc.problem}{context}"
        ) from None
    except yaml.YAMLError as exc:  # the reader's errors (special characters) carry a position
        line = text.count("\n", 0, getattr(exc, "position", 0)) + 1
        reason = getattr(exc, "reason", None) or str(exc)
        raise YAMLProblem(line, f"not valid YAML: {reason}") from None
    return root


def construct(node: Node) -> Any:
    """Plain data (dicts with text keys, lists, scalars) from a node of :func:`compose`.

    Raises:
        YAMLProblem: A key that is not text, a duplicate key, the merge key, or a tag that
            scenario files do not use, at its line.
    """
    if isinstance(node, ScalarNode):
        make = _CONSTRUCTOR.yaml_constructors.get(node.tag)
        if make is None or node.tag in (_MAP, _SEQ):
            raise YAMLProblem(_line(node.start_mark), f"unsupported YAML tag {node.tag}")
        try:
            return make(_CONSTRUCTOR, node)
        except (yaml.constructor.ConstructorError, ValueError) as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            raise YAMLProblem(_line(node.start_mark), f"not valid YAML: {problem}") from None
    if isinstance(node, SequenceNode) and node.tag == _SEQ:
        return [construct(child) for child in node.value]
    if isinstance(node, MappingNode) and node.tag == _MAP:
        data: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _key(key_node)
            if key in data:
                raise YAMLProblem(
                    _line(key_node.start_mark),
                    f"duplicate key '{key}' (the later value would win)",
                )
            data[key] = construct(value_node)
        return data
    raise YAMLProblem(_line(node.start_mark), f"unsupported YAML tag {node.tag}")


def _key(node: Node) -> str:
    """A mapping key, which must be text."""
    line = _line(node.start_mark)
    if isinstance(node, MappingNode | SequenceNode):
        kind = "a mapping" if isinstance(node, MappingNode) else "a list"
        raise YAMLProblem(line, f"expected a text key, found {kind} (a `?` complex key)")
    if node.tag == _MERGE:
        raise YAMLProblem(
            line, "the merge key `<<` is not supported (YAML 1.2 has none); write the fields out"
        )
    if node.tag != _STR:
        shown = node.value or "an empty key (null)"
        raise YAMLProblem(line, f"expected a text key, found {shown}; put it in quotes")
    return node.value


def is_alias(node: Node | None) -> bool:
    """Whether ``node`` is where an alias (``*name``) uses an anchored value."""
    return node is not None and bool(node.__dict__.get("aliased", False))
