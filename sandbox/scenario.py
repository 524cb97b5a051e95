"""The scenario file's common schema: the sections every mode shares, and its base class.

A scenario is one of the modes' classes (:data:`sandbox.modes.MODES`), each a subclass of
:class:`ScenarioBase` that adds its own sections: forecast mode's in
``sandbox/forecast/scenario.py``, NPC worlds' in ``sandbox/npc/scenario.py``. This module
imports no mode, so the modes can import it. Every field is documented in
``docs/scenarios.md``. Files are read and checked by :mod:`sandbox.scenario_loader`, whose
errors point at the line.
"""

from __future__ import annotations

import functools
import re
import types
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

from personahub.llm.backends import BackendName
from personahub.store.filters import PersonaFilter, matcher
from sandbox.raking import JOINT

SCENARIO_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
SHARE_SUM_TOLERANCE = 0.01
"""How far the target shares of a ``population.match`` attribute may sum from 1 (rounding)."""

Problem = tuple[tuple[Any, ...], str, Any]
"""A problem found across fields: (field path, what was expected, what was found or None)."""


class ScenarioError(ValueError):
    """A scenario that cannot be used. ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class FileProblem(ValueError):
    """A file that a scenario names cannot be read; ``problem`` says at which field."""

    def __init__(self, problem: Problem):
        super().__init__(problem[1])
        self.problem = problem


class Strict(BaseModel):
    """A scenario section: unknown fields are errors, values never change after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PersonaSelector(Strict):
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
    def _predicate(self) -> Callable[[Any], bool]:
        return matcher(self.to_filter())

    def matches(self, text: str, attributes: dict[str, Any]) -> bool:
        return self._predicate(types.SimpleNamespace(text=text, attributes=attributes))


class Population(Strict):
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
    match: dict[str, dict[str, Annotated[float, Field(ge=0, le=1)]]] | None = Field(
        None,
        description="Target share of each value of persona attributes (a key `a x b` is a "
        "joint cell, its values `u x v`): the agents get raking weights that reproduce them.",
    )

    @field_validator("match", mode="before")
    @classmethod
    def _values_as_text(cls, value: Any) -> Any:
        # `{income: {1: 0.2}}` in YAML has int keys; attributes compare as text
        if isinstance(value, dict):
            return {
                str(k): {str(v): s for v, s in shares.items()}
                if isinstance(shares, dict)
                else shares
                for k, shares in value.items()
            }
        return value

    def problems(self) -> list[Problem]:
        """Target shares that do not sum to 1, and joint values with the wrong number of parts."""
        out: list[Problem] = []
        for key, shares in (self.match or {}).items():
            where = ("population", "match", key)
            total = sum(shares.values())
            if abs(total - 1) > SHARE_SUM_TOLERANCE:
                out.append((where, f"expected shares that sum to 1, found {total:.3g}", None))
            parts = len(key.split(JOINT))
            for value in shares:
                if len(value.split(JOINT)) != parts:
                    expected = f"expected a value of {parts} parts joined by '{JOINT.strip()}'"
                    out.append(((*where, value), expected, value))
        return out


class _GraphBase(Strict):
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


class Event(Strict):
    """Something that happens at a step."""

    step: int = Field(ge=0)
    channel: Literal["broadcast", "targeted", "seeded"] = "broadcast"
    content: str = Field(min_length=1, max_length=2000)
    source: str = Field("the news", description="Who says it, as the agents will see it.")
    target: PersonaSelector | None = Field(None, description="Who receives a targeted event.")
    k: int | None = Field(None, ge=1, description="How many random agents a seeded event reaches.")


class LLMOverrides(Strict):
    """Model settings for this scenario (CLI flags still win)."""

    backend: BackendName | None = None
    model: str | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=16, le=4096)


class ScenarioBase(Strict):
    """The fields of every scenario file; each mode's scenario class adds its own.

    A subclass sets ``mode`` to a ``Literal`` of its name (the union's discriminator) and may
    extend :meth:`problems`, :meth:`cut` and :meth:`with_files`.
    """

    name: str = Field(pattern=SCENARIO_NAME)
    description: str = ""
    mode: str = Field(description="Which mode runs it; subclasses narrow it to their name.")
    seed: int = Field(0, ge=0)
    population: Population = Field(default_factory=Population)
    graph: Graph = Field(default_factory=lambda: WattsStrogatz(type="watts_strogatz"))
    steps: int = Field(ge=1, le=1000)
    timeline: list[Event] = Field(default_factory=list)
    llm: LLMOverrides = Field(default_factory=LLMOverrides)

    @property
    def wants_communities(self) -> bool:
        """Whether the run must compute graph communities even on big graphs."""
        return False

    @property
    def segment_attributes(self) -> list[str]:
        """Persona attributes the results are broken down by (none here; a mode with
        segments names them)."""
        return []

    def problems(self) -> list[Problem]:
        """Checks across fields that the field types cannot express."""
        out: list[Problem] = self.population.problems()
        for i, event in enumerate(self.timeline):
            if event.step >= self.steps:
                out.append(
                    (
                        ("timeline", i, "step"),
                        f"expected a step below steps={self.steps}",
                        event.step,
                    )
                )
            if event.channel == "targeted" and event.target is None:
                out.append((("timeline", i), "a targeted event needs `target`", None))
            if event.channel == "seeded" and event.k is None:
                out.append((("timeline", i), "a seeded event needs `k`", None))
            if event.channel != "seeded" and event.k is not None:
                out.append(
                    (
                        ("timeline", i, "k"),
                        f"`k` is only for seeded events, not {event.channel}",
                        None,
                    )
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

    def cut(self, data: dict[str, Any], steps: int) -> None:
        """Shorten ``data`` (this scenario dumped as JSON) to ``steps``, in place: whatever is
        scheduled at or after that step never happens.

        Raises:
            ValueError: The shorter run cannot be a run of this mode (one line).
        """
        data["steps"] = steps
        data["timeline"] = [e for e in data["timeline"] if e["step"] < steps]

    def with_files(self, path: Path) -> Self:
        """This scenario, read from ``path``, with the files it names (relative to that file)
        read into it, so the run database holds all of it.

        Raises:
            FileProblem: A named file cannot be read.
        """
        return self
