"""The scenario file: its pydantic schema and a loader whose errors point at the line.

Every field is documented in ``docs/scenarios.md``. :func:`load_scenario` raises
:class:`ScenarioError` whose message names the file, the line, the field, what was expected and
what was found, one line per problem, never a traceback.
"""

from __future__ import annotations

import difflib
import functools
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from personahub.store.filters import PersonaFilter, matcher
from personahub.synthesis.world import World, WorldError, load_world
from sandbox.npc.schema import Dialogue, Player, WorldSpec

QUESTION_ID = r"^[a-z][a-z0-9_]{0,31}$"
SCENARIO_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
RESERVED_IDS = frozenset({"reaction", "post", "aware"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PersonaSelector(_Strict):
    """Which personas: all conditions must hold. Same semantics as the persona store's filter."""

    contains_any: list[str] = Field(default_factory=list, description="Any keyword (no case).")
    regex: str | None = Field(None, description="A regular expression on the persona text.")
    attributes: dict[str, str | list[str]] = Field(
        default_factory=dict, description="Attribute equals a value (or is one of a list)."
    )

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression ({exc})") from None
        return value

    @field_validator("attributes", mode="before")
    @classmethod
    def _numbers_as_text(cls, value: Any) -> Any:
        # `{age: 20}` in YAML is an int; attributes compare as text
        if isinstance(value, dict):
            return {
                k: [str(i) for i in v] if isinstance(v, list) else str(v) if v is not None else v
                for k, v in value.items()
            }
        return value

    def to_filter(self, **extra: Any) -> PersonaFilter:
        return PersonaFilter(
            contains_any=self.contains_any,
            regex=self.regex,
            attributes=dict(self.attributes),
            **extra,
        )

    @functools.cached_property
    def _predicate(self) -> Any:
        return matcher(self.to_filter())

    def matches(self, text: str, attributes: dict[str, Any]) -> bool:
        return self._predicate(types.SimpleNamespace(text=text, attributes=attributes))


class Population(_Strict):
    """Who takes part."""

    source: str = Field(
        "sample",
        description="`sample` (the packaged population), a persona JSONL/CSV/Parquet file, "
        "a persona store (.db) or a database URL. Paths are relative to the scenario file.",
    )
    sample: int | None = Field(None, ge=1, description="Number of agents; default all.")
    filter: PersonaSelector | None = None
    text_field: str | None = Field(None, description="Persona text column of a file source.")
    edges: str | None = Field(
        None,
        description="JSONL of relationship edges for a file source: src, dst (persona ids), "
        "relation, strength.",
    )


class _GraphBase(_Strict):
    relation: str = Field("acquaintance", description="Label of generated edges.")


class StoredEdges(_GraphBase):
    type: Literal["persona_edges"]
    connect_isolated: bool = Field(
        True, description="Link agents left without edges by sampling to one random agent."
    )


class WattsStrogatz(_GraphBase):
    type: Literal["watts_strogatz"]
    k: int = Field(6, ge=2, description="Each node starts linked to its k nearest neighbours.")
    p: float = Field(0.1, ge=0, le=1, description="Rewiring probability.")


class BarabasiAlbert(_GraphBase):
    type: Literal["barabasi_albert"]
    m: int = Field(3, ge=1, description="Edges from each new node.")


class Homophily(_GraphBase):
    type: Literal["homophily"]
    k: int = Field(5, ge=1, description="Links to the k most similar personas (embeddings).")
    p: float = Field(0.1, ge=0, le=1, description="Share of links rewired at random.")


Graph = Annotated[
    StoredEdges | WattsStrogatz | BarabasiAlbert | Homophily, Field(discriminator="type")
]


class Event(_Strict):
    """Something that happens at a step."""

    step: int = Field(ge=0)
    channel: Literal["broadcast", "targeted", "seeded"] = "broadcast"
    content: str = Field(min_length=1, max_length=2000)
    source: str = Field("the news", description="Who says it, as the agents will see it.")
    target: PersonaSelector | None = Field(None, description="Who receives a targeted event.")
    k: int | None = Field(None, ge=1, description="How many random agents a seeded event reaches.")


class Interaction(_Strict):
    """How agents act and influence each other."""

    word_of_mouth: bool = Field(True, description="Posts reach graph neighbours next step.")
    activation: float = Field(0.6, gt=0, le=1, description="Chance an aware agent acts in a step.")
    memory_size: int = Field(6, ge=1, le=50, description="Observations an agent keeps verbatim.")
    posts_seen: int = Field(4, ge=0, le=20, description="Neighbour posts shown per step, at most.")


class _QuestionBase(_Strict):
    id: str = Field(pattern=QUESTION_ID)
    ask: str = Field(min_length=3, max_length=300)


class ChoiceQuestion(_QuestionBase):
    type: Literal["choice"]
    options: list[str] = Field(min_length=2, max_length=12)


class LikertQuestion(_QuestionBase):
    type: Literal["likert"]
    scale: int = Field(5, ge=3, le=11)
    low: str = Field("strongly disagree", description="Meaning of 1.")
    high: str = Field("strongly agree", description="Meaning of the top of the scale.")
    anchors: list[str] | None = Field(
        None, description="One reference statement per scale point, for semantic-similarity rating."
    )


class NumberQuestion(_QuestionBase):
    type: Literal["number"]
    min: float
    max: float
    unit: str = ""


class TextQuestion(_QuestionBase):
    type: Literal["text"]
    max_length: int = Field(200, ge=10, le=1000)


Question = Annotated[
    ChoiceQuestion | LikertQuestion | NumberQuestion | TextQuestion, Field(discriminator="type")
]


class LLMOverrides(_Strict):
    """Model settings for this scenario (CLI flags still win)."""

    backend: Literal["local", "openai"] | None = None
    model: str | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=16, le=4096)


class Report(_Strict):
    """What the report shows."""

    transcripts_per_segment: int = Field(2, ge=0, le=20)


class Scenario(_Strict):
    """A scenario file."""

    name: str = Field(pattern=SCENARIO_NAME)
    description: str = ""
    mode: Literal["forecast", "npc_world"] = "forecast"
    seed: int = Field(0, ge=0)
    population: Population = Field(default_factory=Population)
    graph: Graph = Field(default_factory=lambda: WattsStrogatz(type="watts_strogatz"))
    steps: int = Field(ge=1, le=1000)
    timeline: list[Event] = Field(default_factory=list)
    interaction: Interaction = Field(default_factory=Interaction)
    questions: list[Question] = Field(default_factory=list, max_length=12)
    world: WorldSpec | None = Field(None, description="npc_world: the world (default Saltmere).")
    dialogue: Dialogue = Field(default_factory=Dialogue)
    player: Player | None = None
    metrics: list[str] | None = Field(None, description="Question ids to chart; default all.")
    segments: list[str] = Field(
        default_factory=list, description="Persona attributes (or `community`) to break down by."
    )
    llm: LLMOverrides = Field(default_factory=LLMOverrides)
    report: Report = Field(default_factory=Report)

    def question(self, qid: str) -> Question:
        return next(q for q in self.questions if q.id == qid)

    @property
    def metric_ids(self) -> list[str]:
        if self.metrics is not None:
            return list(self.metrics)
        return [q.id for q in self.questions if q.type != "text"]


class ScenarioError(ValueError):
    """A scenario that cannot be used. ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def _mode_problems(s: Scenario) -> list[tuple[tuple[Any, ...], str, Any]]:
    out: list[tuple[tuple[Any, ...], str, Any]] = []
    if s.mode == "forecast":
        if not s.questions:
            out.append((("questions",), "expected at least 1 question (forecast mode)", None))
        if not s.timeline:
            out.append((("timeline",), "expected at least 1 event (forecast mode)", None))
        for key in ("world", "player"):
            if getattr(s, key) is not None:
                out.append(((key,), "only for `mode: npc_world`", None))
    else:
        if s.questions:
            out.append((("questions",), "questions are for forecast mode, not npc_world", None))
        for i, line in enumerate(s.player.lines if s.player else []):
            if line.step >= s.steps:
                out.append(
                    (
                        ("player", "lines", i, "step"),
                        f"expected a step below steps={s.steps}",
                        line.step,
                    )
                )
    return out


def _semantic_problems(s: Scenario) -> list[tuple[tuple[Any, ...], str, Any]]:
    out = _mode_problems(s)
    ids = [q.id for q in s.questions]
    for i, q in enumerate(s.questions):
        if q.id in RESERVED_IDS:
            out.append((("questions", i, "id"), f"'{q.id}' is reserved; use another id", q.id))
        if ids.count(q.id) > 1:
            out.append((("questions", i, "id"), "question ids must be unique", q.id))
        if isinstance(q, ChoiceQuestion) and len(set(q.options)) != len(q.options):
            out.append((("questions", i, "options"), "options must be unique", None))
        if isinstance(q, LikertQuestion) and q.anchors is not None and len(q.anchors) != q.scale:
            out.append(
                (
                    ("questions", i, "anchors"),
                    f"expected one statement per scale point ({q.scale}), found {len(q.anchors)}",
                    None,
                )
            )
        if isinstance(q, NumberQuestion) and q.max <= q.min:
            out.append((("questions", i, "max"), f"expected more than min={q.min:g}", q.max))
    chartable = [q.id for q in s.questions if q.type != "text"]
    for i, metric in enumerate(s.metrics or []):
        if metric not in ids:
            out.append((("metrics", i), f"expected a question id ({', '.join(ids)})", metric))
        elif metric not in chartable:
            out.append((("metrics", i), "a text question cannot be charted", metric))
    for i, event in enumerate(s.timeline):
        if event.step >= s.steps:
            out.append(
                (("timeline", i, "step"), f"expected a step below steps={s.steps}", event.step)
            )
        if event.channel == "targeted" and event.target is None:
            out.append((("timeline", i), "a targeted event needs `target`", None))
        if event.channel == "seeded" and event.k is None:
            out.append((("timeline", i), "a seeded event needs `k`", None))
        if event.channel != "seeded" and event.k is not None:
            out.append(
                (("timeline", i, "k"), f"`k` is only for seeded events, not {event.channel}", None)
            )
        if event.channel != "targeted" and event.target is not None:
            out.append(
                (
                    ("timeline", i, "target"),
                    f"`target` is only for targeted events, not {event.channel}",
                    None,
                )
            )
    return out


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
    """The model class whose fields an error location points into."""
    current: list[Any] = [Scenario]
    for part in loc:
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


def _describe(err: dict[str, Any]) -> tuple[tuple[Any, ...], str, Any]:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    kind = err["type"]
    found = err.get("input")
    if kind == "extra_forbidden":
        name = str(loc[-1])
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
        expected = err.get("ctx", {}).get("expected_tags", "")
        return (*loc, "type"), f"expected one of {expected}", err.get("ctx", {}).get("tag")
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


_UNION_TAGS = {
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


def parse_scenario(text: str, path: Path) -> Scenario:
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


def validate_scenario(data: dict[str, Any], path: Path, root: yaml.Node | None = None) -> Scenario:
    """Validate scenario data (from a file, or a file plus CLI overrides).

    Raises:
        ScenarioError: One line per problem, in file order.
    """
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(
            _by_line([_format(path, root, *_describe(e)) for e in exc.errors(include_url=False)])
        ) from None
    problems = _semantic_problems(scenario)
    if problems:
        raise ScenarioError(_by_line([_format(path, root, *p) for p in problems]))
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file.

    Raises:
        ScenarioError: The file is missing, not YAML, or not a valid scenario.
    """
    path = Path(path)
    if not path.is_file():
        raise ScenarioError([f"{path}: scenario file not found"])
    scenario = parse_scenario(path.read_text(encoding="utf-8"), path)
    if scenario.mode == "npc_world" and not isinstance(scenario.world, World):
        # A world file becomes part of the scenario, so the run database holds all of it.
        where = None if scenario.world is None else (path.parent / scenario.world).resolve()
        try:
            world = load_world(where)
        except WorldError as exc:
            raise ScenarioError([f"{path}: world: {exc}"]) from None
        scenario = scenario.model_copy(update={"world": world})
    return scenario
