"""The scenario of ``mode: archetypes``: one request per archetype instead of per agent.

Besides the common sections (:mod:`sandbox.scenario`) it has ``agents`` (a population drawn
from attribute marginals, for runs far beyond any persona file), ``archetype`` (which attributes
and what exposure make an archetype, how it answers, how many agents per archetype are also
simulated one by one to measure what the shortcut costs), ``interaction`` and ``questions``
(choice and likert only: each archetype answers with a distribution over options).
"""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

from pydantic import Field

from sandbox.archetypes.state import MAX_EVENTS
from sandbox.forecast.scenario import QUESTION_ID, RESERVED_IDS, ChoiceQuestion, LikertQuestion
from sandbox.scenario import Problem, ScenarioBase, StoredEdges, Strict, WattsStrogatz

Question = Annotated[ChoiceQuestion | LikertQuestion, Field(discriminator="type")]
MAX_AGENTS = 10_000_000
KEY_BITS = 62  # an archetype's packed key must fit an int64


class GeneratedAgents(Strict):
    """Agents drawn from attribute marginals (each attribute independently)."""

    n: int = Field(ge=1, le=MAX_AGENTS, description="How many agents.")
    attributes: dict[str, dict[str, float]] = Field(
        min_length=1, description="Attribute -> value -> share (normalised per attribute)."
    )


class ArchetypeSpec(Strict):
    """What makes two agents the same archetype, and how an archetype answers."""

    attributes: list[str] = Field(
        default_factory=list, max_length=8, description="Persona attributes that define it."
    )
    heard_bins: list[int] = Field(
        default_factory=lambda: [0, 1, 3],
        min_length=1,
        max_length=8,
        description="Lower edges of the posts-heard bins, from 0: [0, 1, 3] = none, 1-2, 3+.",
    )
    answer_mode: Literal["logprobs", "verbalized"] = Field(
        "logprobs",
        description="logprobs: an option request per question; verbalized: one structured "
        "request stating a percentage per option.",
    )
    fidelity: int = Field(
        0, ge=0, le=20, description="Agents per archetype also asked one by one, every step."
    )
    per_agent: bool = Field(
        False,
        description="Ask every acting agent on its own, with its own persona: the reference the "
        "shortcut is measured against (one request per agent, as forecast mode).",
    )


class Spread(Strict):
    """How agents act and pass the word on."""

    activation: float = Field(0.6, gt=0, le=1, description="Chance an aware agent acts in a step.")
    word_of_mouth: bool = Field(True, description="Acting agents' posts reach their neighbours.")
    post_share: float = Field(0.5, ge=0, le=1, description="Chance an acting agent posts.")


class BlockModel(Strict):
    """Links mostly within the same block of attributes (a stochastic block model)."""

    type: Literal["block_model"]
    by: list[str] = Field(min_length=1, description="Attributes whose combination is a block.")
    degree: float = Field(10, gt=0, le=200, description="Average links per agent.")
    within: float = Field(0.7, ge=0, le=1, description="Share of links inside the block.")
    relation: str = "acquaintance"


ScaleGraph = Annotated[WattsStrogatz | BlockModel | StoredEdges, Field(discriminator="type")]


class ArchetypeScenario(ScenarioBase):
    """A scenario answered per archetype (see the module docstring)."""

    mode: Literal["archetypes"]
    agents: GeneratedAgents | None = None
    graph: ScaleGraph = Field(  # type: ignore[assignment]
        default_factory=lambda: WattsStrogatz(type="watts_strogatz")
    )
    archetype: ArchetypeSpec = Field(default_factory=ArchetypeSpec)
    interaction: Spread = Field(default_factory=Spread)
    questions: list[Question] = Field(min_length=1, max_length=8)
    segments: list[str] = Field(
        default_factory=list, description="Attributes to break results down by."
    )

    def problems(self) -> list[Problem]:
        out = super().problems()
        if len(self.timeline) > MAX_EVENTS:
            out.append((("timeline",), f"at most {MAX_EVENTS} events", len(self.timeline)))
        seen: set[str] = set()
        for i, question in enumerate(self.questions):
            if question.id in RESERVED_IDS or question.id in seen:
                out.append((("questions", i, "id"), "a unique id, not reserved", question.id))
            seen.add(question.id)
        bins = self.archetype.heard_bins
        if bins[0] != 0 or any(b <= a for a, b in itertools.pairwise(bins)):
            out.append((("archetype", "heard_bins"), "increasing edges starting at 0", bins))
        if self.agents is not None:
            known = self.agents.attributes
            named: list[tuple[tuple[str, ...], str]] = [
                (("archetype", "attributes"), a) for a in self.archetype.attributes
            ]
            named += [(("segments",), a) for a in self.segments]
            if isinstance(self.graph, BlockModel):
                named += [(("graph", "by"), a) for a in self.graph.by]
            for where, attribute in named:
                if attribute not in known:
                    expected = f"expected one of the agents' attributes ({', '.join(known)})"
                    out.append((where, expected, attribute))
            for i, event in enumerate(self.timeline):
                if event.target is not None and (event.target.regex or event.target.contains_any):
                    message = "generated agents have no persona text: target by attributes"
                    out.append((("timeline", i, "target"), message, None))
            if isinstance(self.graph, StoredEdges):
                out.append(
                    (("graph", "type"), "generated agents have no stored edges", "persona_edges")
                )
            if self.population.source != "sample":
                message = "either `agents` (generated) or `population`, not both"
                out.append((("population", "source"), message, self.population.source))
            radix = 1
            for attribute in self.archetype.attributes:
                radix *= max(1, len(known.get(attribute, {})))
            options = max(len(_labels(q)) for q in self.questions) + 1
            radix *= len(bins) * options
            if radix.bit_length() + len(self.timeline) > KEY_BITS:
                out.append((("archetype",), "fewer attribute values or events", radix))
        return out

    @property
    def stance_options(self) -> int:
        """Options of the first question: a post's stance is its author's answer to it."""
        return len(_labels(self.questions[0]))


def _labels(question: ChoiceQuestion | LikertQuestion) -> list[str]:
    if isinstance(question, ChoiceQuestion):
        return list(question.options)
    return [str(p) for p in range(1, question.scale + 1)]


def describe(scenario: ArchetypeScenario) -> list[tuple[str, str]]:
    """What ``sandbox validate`` says about an archetype scenario."""
    agents = (
        f"{scenario.agents.n:,} generated from marginals of {', '.join(scenario.agents.attributes)}"
        if scenario.agents
        else "from the population section"
    )
    spec = scenario.archetype
    return [
        ("agents", agents),
        ("archetype", f"{' x '.join(spec.attributes) or '(no attributes)'} x exposure"),
        ("answers", f"{spec.answer_mode}, fidelity sample {spec.fidelity} per archetype"),
        ("questions", ", ".join(q.id for q in scenario.questions)),
    ]


__all__ = ["QUESTION_ID", "ArchetypeScenario", "describe"]
