"""The estimate of one run: its own model, stepped to the end on a gateway that calls no model.

:func:`estimate_cast` builds the run's Mesa model through the mode registry exactly as a run
does (same scenario, personas, graph and seed, so the same events reach the same agents and
the same activation draws are made) but on an :class:`~personahub.llm.LLMClient` whose
backend is a :class:`~sandbox.estimate.dry.DryBackend`. Each step's real prompts are rendered
and counted; the typical answers feed back into later prompts (an agent's reaction in its
summary, neighbours' posts in its inbox) and into word of mouth, as real answers would. The
gateway's own meter then holds the calls and tokens. The response cache is left out: the
estimate is of a run that asks the model for every answer.

The estimate is of ONE concrete run (a scenario with its run options applied). Several runs,
e.g. the arms and seeds of an experiment, are estimated one by one and summed with ``+``.
"""

from __future__ import annotations

import asyncio

import networkx as nx
from pydantic import BaseModel, ConfigDict

from personahub.llm import LLMClient, LLMSettings
from sandbox.estimate.dry import DryBackend, KnownAnswers
from sandbox.estimate.sample import SAMPLE_AGENTS, sample_cast
from sandbox.estimate.tokens import TokenCounter
from sandbox.modes import RunSetup, mode_of
from sandbox.population import PersonaRecord
from sandbox.scenario import ScenarioBase


class Estimate(BaseModel):
    """What a run is expected to spend.

    Attributes:
        calls: Model calls.
        prompt_tokens: Prompt tokens over all calls.
        completion_tokens: Completion tokens over all calls.
        cost: Money at the configured prices; None when no price is configured.
        tokenizer: How tokens were counted.
        assumptions: What the typical answers assume of this run, one sentence each (e.g. how
            long NPC conversations last), printed beside the figures.
    """

    model_config = ConfigDict(frozen=True)

    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None = None
    tokenizer: str = ""
    assumptions: list[str] = []

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Estimate) -> Estimate:
        """Two runs' estimates together (e.g. the runs of an experiment)."""
        cost = None if self.cost is None or other.cost is None else self.cost + other.cost
        return Estimate(
            calls=self.calls + other.calls,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost=cost,
            tokenizer=self.tokenizer if self.tokenizer == other.tokenizer else "mixed",
            assumptions=list(dict.fromkeys([*self.assumptions, *other.assumptions])),
        )


def estimate_cast(
    scenario: ScenarioBase,
    personas: list[PersonaRecord],
    graph: nx.Graph[int],
    settings: LLMSettings,
    counter: TokenCounter,
    backend_name: str,
    sample_agents: int = SAMPLE_AGENTS,
    known: KnownAnswers | None = None,
) -> Estimate:
    """The estimate of a run of ``scenario`` (run options applied) over ``personas`` on
    ``graph``, for a gateway configured by ``settings`` whose backend is ``backend_name``.
    No model is called. A population over ``sample_agents`` in a mode whose calls grow with
    its agents is estimated on a sample of that many, scaled (:mod:`sandbox.estimate.sample`).
    """
    mode = mode_of(scenario)
    notes: list[str] = []
    scale = 1.0
    if mode.estimate(backend_name).per_agent and len(personas) > sample_agents:
        scale = len(personas) / sample_agents
        notes.append(
            f"a sample of {sample_agents:,} of the {len(personas):,} agents (each with as many "
            f"contacts) was stepped and its figures scaled by {scale:.2f}"
        )
        personas, graph = sample_cast(personas, graph, sample_agents, scenario.seed)
    dry = settings.model_copy(update={"cache": False, "max_calls": None, "max_total_tokens": None})
    fill = mode.estimate(backend_name)
    backend = DryBackend(settings.model_name, counter, fill, known)
    client = LLMClient(dry, backend=backend)
    loop = asyncio.new_event_loop()
    try:
        setup = RunSetup(scenario, personas, graph, client, scenario.seed, "estimate", None, loop)
        model = mode.build(setup)
        while model.running:
            model.step()
        loop.run_until_complete(client.aclose())
    finally:
        loop.close()
    notes += [f"answers are {known.described}"] if known else fill.stated(scenario)
    if backend.scored and backend_name != "local":
        # A served model's support for logprobs is not known without calling it.
        notes.append(
            "the server returns token log-probabilities for option requests (one prompt and "
            f"one token each); one without them costs {settings.option_samples} sampled "
            "answers per request"
        )
    usage = client.usage()
    price_in, price_out = settings.token_prices()
    prompt = round(usage["prompt_tokens"] * scale)
    completion = round(usage["completion_tokens"] * scale)
    return Estimate(
        calls=round(usage["calls"] * scale),
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost=prompt * price_in + completion * price_out if settings.priced else None,
        tokenizer=counter.label,
        assumptions=notes,
    )
