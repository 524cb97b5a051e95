"""The requests of a step: one per archetype (per question in ``logprobs`` mode), and the
same for the agents of the fidelity sample with their own persona; and what came back, as
an option distribution per question.

Prompts are the ``archetype_system``/``archetype_step`` templates. An archetype's prompt
shows what its members share: the persona described by its attributes, the events they saw,
and how many contacts' posts they heard and what most of those said.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, create_model

from personahub import prompts
from personahub.llm import LLMRequest, LLMResult
from personahub.llm.options import normalise
from personahub.llm.seeds import request_seed
from sandbox.archetypes.buckets import NO_STANCE, Archetype
from sandbox.archetypes.population import describe
from sandbox.archetypes.scenario import ArchetypeScenario
from sandbox.forecast.answer_modes import (
    option_hint,
    option_labels,
    percent_model,
    verbalized_hint,
)


@dataclass(frozen=True)
class Ask:
    """Who a group of requests speaks for: an archetype (``agent`` None) or one agent of
    the fidelity sample, and the requests in question order (one in ``verbalized`` mode)."""

    archetype: int
    agent: int | None
    requests: list[LLMRequest[Any]]


def heard_text(archetype: Archetype, scenario: ArchetypeScenario) -> str:
    if archetype.heard == 0:
        return ""
    upper = archetype.heard_upper
    count = (
        f"{archetype.heard}"
        if upper == archetype.heard + 1
        else f"{archetype.heard} or more"
        if upper is None
        else f"{archetype.heard} to {upper - 1}"
    )
    said = ""
    if archetype.stance != NO_STANCE:
        first = scenario.questions[0]
        said = f' Most of them answered "{option_labels(first)[archetype.stance]}" to: {first.ask}'
    return f"{count} of your contacts talked to you about it.{said}"


_VERBALIZED: dict[int, tuple[ArchetypeScenario, type[BaseModel]]] = {}


def _verbalized_model(scenario: ArchetypeScenario) -> type[BaseModel]:
    """The verbalized answer (a percentage per option of every question), one class per
    scenario: the gateway derives a schema and a grammar per class, which costs milliseconds,
    and a step sends hundreds of these requests."""
    cached = _VERBALIZED.get(id(scenario))
    if cached is None or cached[0] is not scenario:
        fields: dict[str, Any] = {q.id: (percent_model(q), ...) for q in scenario.questions}
        cached = (scenario, create_model("ArchetypeAnswer", **fields))
        _VERBALIZED[id(scenario)] = cached
    return cached[1]


def requests_for(
    scenario: ArchetypeScenario,
    archetype: Archetype,
    persona: str | None,
    seed: int,
) -> list[LLMRequest[Any]]:
    """The requests answering for ``archetype`` (``persona`` None) or for one of its members."""
    system = prompts.render(
        "archetype_system", package="sandbox", persona=persona or describe(archetype.attributes)
    )
    context = {
        "events": [scenario.timeline[e].content for e in archetype.events],
        "heard": heard_text(archetype, scenario),
    }
    tag = "archetype" if persona is None else "archetype_fidelity"
    if scenario.archetype.answer_mode == "verbalized":
        questions = [
            {"id": q.id, "ask": q.ask, "hint": verbalized_hint(q)} for q in scenario.questions
        ]
        user = prompts.render(
            "archetype_step", package="sandbox", questions=questions, ask="", hint="", **context
        )
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        return [LLMRequest(messages, schema=_verbalized_model(scenario), seed=seed, tag=tag)]
    out: list[LLMRequest[Any]] = []
    for q in scenario.questions:
        user = prompts.render(
            "archetype_step",
            package="sandbox",
            questions=[],
            ask=q.ask,
            hint=option_hint(q),
            **context,
        )
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        out.append(LLMRequest(messages, options=option_labels(q), seed=seed, tag=tag))
    return out


def asks(
    scenario: ArchetypeScenario,
    archetypes: list[Archetype],
    fidelity: dict[int, list[tuple[int, str]]],
    run_seed: int,
    step: int,
    personas: list[str] | None = None,
) -> list[Ask]:
    """Every request of a step: each archetype's, then its fidelity agents' (``fidelity``:
    archetype index -> [(agent id, persona text)]). ``personas`` (per-agent reference runs:
    one archetype per agent, in order) puts each agent's own persona in its prompt."""
    out = []
    for index, archetype in enumerate(archetypes):
        seed = request_seed(run_seed, step, -1 - index)
        persona = personas[index] if personas is not None else None
        out.append(Ask(index, None, requests_for(scenario, archetype, persona, seed)))
        for agent, persona in fidelity.get(index, []):
            own = request_seed(run_seed, step, agent)
            out.append(Ask(index, agent, requests_for(scenario, archetype, persona, own)))
    return out


def distributions(
    scenario: ArchetypeScenario, results: list[LLMResult[Any]]
) -> list[np.ndarray] | None:
    """One probability vector per question from an ask's results, or None if any failed."""
    if any(r.error is not None for r in results):
        return None
    if scenario.archetype.answer_mode == "verbalized":
        parsed = results[0].parsed
        if parsed is None:
            return None
        out = []
        for q in scenario.questions:
            labels = option_labels(q)
            probs = normalise(getattr(parsed, q.id).percents(), labels)
            if probs is None:
                return None
            out.append(np.array([probs[label] for label in labels]))
        return out
    vectors = []
    for q, result in zip(scenario.questions, results, strict=True):
        if result.distribution is None:
            return None
        labels = option_labels(q)
        vectors.append(np.array([result.distribution.probs.get(label, 0.0) for label in labels]))
    return vectors
