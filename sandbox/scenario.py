"""The scenario file's schema: pydantic models for every section.

Every field is documented in ``docs/scenarios.md``. Files are read and checked by
:mod:`sandbox.scenario_loader`, whose errors point at the line.
"""

from __future__ import annotations

import functools
import re
import types
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from personahub.llm.backends import BackendName
from personahub.store.filters import PersonaFilter, matcher
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

    backend: BackendName | None = None
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
