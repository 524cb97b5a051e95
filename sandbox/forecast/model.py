"""ForecastModel: the Mesa model that runs a scenario over persona agents on a graph.

One step: deliver the step's events -> select the active agents -> send all their requests as
one concurrent batch through the gateway -> apply the validated answers -> each poster shares
its post with the agents on its neighbouring cells -> collect metrics -> record the step (one
transaction). The model steps through ``AgentSet`` operations (``select``, ``map``, ``do``,
``agg``) on ``self.agents``, whose order is graph-node order. Everything random comes from the
model's seeded ``random``, and every request carries a seed fixed by (run, step, agent), so the
same seed with the response cache replays a run exactly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from statistics import fmean
from typing import Any

import mesa
import networkx as nx
from mesa.agent import AgentSet
from mesa.discrete_space import Network

from personahub.llm import LLMClient, LLMResult
from sandbox.forecast.agent import Observation, PersonaAgent
from sandbox.forecast.answer_modes import AgentTurn, combine
from sandbox.forecast.answers import response_model
from sandbox.forecast.scenario import ChoiceQuestion, ForecastScenario
from sandbox.population import PersonaRecord
from sandbox.recorded_model import RecordedModel, result_columns
from sandbox.rundb import MessageRow, RunDatabase
from sandbox.scenario import Event

ResultCallback = Callable[[int, LLMResult], None]


class ForecastModel(RecordedModel):
    """A scenario run.

    Args:
        scenario: The validated scenario.
        personas: One persona per agent; agent ``i`` sits on graph node ``i``.
        graph: Relationship graph over nodes ``0..n-1`` with ``relation``/``strength``.
        llm: The gateway client.
        seed: Seed of everything random in the run.
        run_id: The run's id in ``database``.
        database: Where steps are recorded; None runs without recording.
        loop: The event loop that drives the gateway (the caller owns it).
        on_result: Called as each agent's answer arrives (for progress bars).

    Attributes:
        space: The Mesa network over ``graph``; agent ``i`` is fixed to the cell of node ``i``.
        by_node: The agents in graph-node order (the runner writes agent and edge rows from
            it and checks agent ids on resume). ``self.agents`` holds the same agents in the
            same order, since they are created node by node.
    """

    def __init__(
        self,
        scenario: ForecastScenario,
        personas: list[PersonaRecord],
        graph: nx.Graph[int],
        llm: LLMClient,
        *,
        seed: int,
        run_id: str = "",
        database: RunDatabase | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        on_result: ResultCallback | None = None,
    ):
        super().__init__(seed=seed)
        self.scenario = scenario
        self.run_seed = seed
        self.llm = llm
        self.graph = graph
        self.run_id = run_id
        self.database = database
        self.loop = loop or asyncio.new_event_loop()
        self.on_result = on_result
        self.schema = response_model(scenario)
        self.space = Network(graph, capacity=1, random=self.random)
        memory = scenario.interaction.memory_size
        self.by_node: list[PersonaAgent] = [
            PersonaAgent(self, persona, memory, self.space[node])
            for node, persona in enumerate(personas)
        ]
        self.unit = "agents"
        self.last_active = 0
        self.last_posts = 0
        self.last_errors = 0
        self._collected_step = -1
        self._collected: dict[str, list[Any]] = {}
        self.datacollector = mesa.DataCollector(model_reporters=self._reporters())

    @property
    def current_step(self) -> int:
        """Index of the step being run (0-based); Mesa counts ``steps`` from 1."""
        return self.steps - 1

    def _reporters(self) -> dict[str, Callable[[ForecastModel], Any]]:
        reporters: dict[str, Callable[[ForecastModel], Any]] = {
            "aware": lambda m: m.agents.agg("aware", sum) / max(1, len(m.agents)),
            "active": lambda m: m.last_active,
            "posts": lambda m: m.last_posts,
            "errors": lambda m: m.last_errors,
        }
        for qid in self.scenario.metric_ids:
            question = self.scenario.question(qid)
            if isinstance(question, ChoiceQuestion):
                for option in question.options:
                    reporters[f"{qid}={option}"] = partial(_collected_share, qid=qid, option=option)
            else:
                reporters[f"{qid}:mean"] = partial(_collected_mean, qid=qid)
        return reporters

    def collected(self, qid: str) -> list[Any]:
        """The answers to ``qid`` as of this step's metrics collection. One pass over the
        agents per step serves every reporter: a pass per option took ~0.4 s a step at
        100k agents (benchmarks/sim_scale.py)."""
        if self._collected_step != self.steps:
            every = self.agents.get("answers")
            self._collected = {
                q: [answers[q] for answers in every if q in answers]
                for q in self.scenario.metric_ids
            }
            self._collected_step = self.steps
        return self._collected[qid]

    def answered(self, qid: str) -> list[Any]:
        return [answers[qid] for answers in self.agents.get("answers") if qid in answers]

    def share(self, qid: str, option: str) -> float | None:
        return _share(self.answered(qid), option)

    def mean(self, qid: str) -> float | None:
        return _mean(self.answered(qid))

    def _deliver(self, event: Event, step: int) -> list[dict[str, Any]]:
        observation = Observation(step, "event", event.source, event.content)
        targets: AgentSet
        if event.channel == "broadcast":
            targets = self.agents
        elif event.channel == "targeted":
            target = event.target
            assert target is not None
            targets = self.agents.select(
                lambda a: target.matches(a.persona.text, a.persona.attributes)
            )
        else:
            assert event.k is not None
            # random.sample over the node-ordered agents (not AgentSet.shuffle): the same
            # draws as every earlier run of this seed, so recorded runs still replay.
            sample = self.random.sample(self.by_node, min(event.k, len(self.by_node)))
            targets = AgentSet(sample, random=self.random)
        targets.do("observe", observation, persist=False)
        if event.channel == "broadcast":  # one row stands for everyone
            return [self._message(step, "event", None, -1, "", event.content, event.source)]
        return [
            self._message(step, "event", None, a.unique_id, "", event.content, event.source)
            for a in targets
        ]

    def _message(
        self,
        step: int,
        kind: str,
        src: int | None,
        dst: int,
        relation: str,
        content: str,
        source: str = "",
    ) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "step": step,
            "kind": kind,
            "src_agent": src,
            "dst_agent": dst,
            "relation": relation,
            "source": source,
            "content": content,
        }

    def step(self) -> None:
        """One step, on the model's own event loop (Mesa counts ``steps`` before it)."""
        self.loop.run_until_complete(self._step())

    async def astep(self) -> None:
        """One step on the running event loop, so that an experiment's runs step side by side
        through one gateway. Awaited, it bypasses Mesa's step wrapper, so it counts the step
        itself as the wrapper does."""
        self.steps += 1
        await self._step()

    async def _step(self) -> None:
        step = self.current_step
        messages: list[dict[str, Any]] = []
        for event in self.scenario.timeline:
            if event.step == step:
                messages.extend(self._deliver(event, step))
        activation = self.scenario.interaction.activation
        # Only agents with something new to react to act; the rest keep their answers. The
        # draw is made only for agents with an inbox, in node order: the RNG stream resume
        # and replay rely on.
        active = self.agents.select(lambda a: a.inbox and self.random.random() < activation)
        # Each agent's requests (one, or one per choice/likert question more in the logprobs
        # answer mode) go out together in one batch, then are dealt back per agent.
        per_agent = active.map("build_requests", self.scenario, self.schema, step, self.run_seed)
        requests = [request for own in per_agent for request in own]
        if self.on_step_start is not None:
            self.on_step_start(step, len(requests))
        results = iter(await self.llm.batch(requests, on_result=self.on_result))

        interactions = []
        posts: list[tuple[PersonaAgent, str]] = []
        for agent, own in zip(active, per_agent, strict=True):
            got = [next(results) for _ in own]
            result, option_results = (got[0], got[1:]) if self.scenario.step_reply else (None, got)
            turn = combine(self.scenario, result, option_results, own[0].seed or 0)
            post = agent.apply(turn)
            interactions.append(self._interaction_row(step, agent, turn, post))
            if post:
                posts.append((agent, post))
        # Posts spread only once every active agent has applied its answer: applying empties
        # the inbox, so a post shared earlier would be lost to a neighbour acting later.
        if self.scenario.interaction.word_of_mouth:
            for agent, post in posts:
                messages.extend(
                    self._message(
                        step, "post", agent.unique_id, neighbour.unique_id, relation, post
                    )
                    for neighbour, relation in agent.share(post, step)
                )
        self.last_active = len(active)
        self.last_posts = len(posts)
        self.last_errors = sum(row["error_kind"] is not None for row in interactions)
        self.record_step(step, messages=messages, interactions=interactions)

    def _interaction_row(
        self, step: int, agent: PersonaAgent, turn: AgentTurn, post: str
    ) -> dict[str, Any]:
        result, parsed = turn.result, turn.parsed
        return {
            **result_columns(result),
            "run_id": self.run_id,
            "step": step,
            "agent_id": agent.unique_id,
            "observations": agent.shown_json(),
            "parsed": parsed,
            "reaction": agent.reaction if parsed else "",
            "post": post,
        }

    def restore(
        self,
        last_step: int,
        rng_state: list[Any],
        states: dict[int, tuple[int, dict[str, Any]]],
        events: list[MessageRow],
        metrics: list[dict[str, Any]],
    ) -> None:
        """Continue after ``last_step``: agent states, random state and metric history.

        Agents are saved only when they act or receive posts; events that reached an agent
        after its last save are replayed from the recorded event deliveries, in order.
        """
        self.restore_run_state(last_step, rng_state, metrics)
        saved_at = {agent_id: step for agent_id, (step, _) in states.items()}
        saved = self.agents.select(lambda a: a.unique_id in states)
        saved.do(lambda a: a.restore(states[a.unique_id][1]))
        # Mesa keeps no index by agent id; a one-off one serves the per-agent event rows.
        by_id = {a.unique_id: a for a in self.agents}
        for row in events:
            if row.kind != "event" or row.step > last_step:
                continue
            observation = Observation(row.step, "event", row.source, row.content)
            targets = self.agents if row.dst_agent == -1 else [by_id[row.dst_agent]]
            for agent in targets:
                if row.step > saved_at.get(agent.unique_id, -1):
                    agent.observe(observation, persist=False)


def _share(values: list[Any], option: str) -> float | None:
    return sum(v == option for v in values) / len(values) if values else None


def _mean(values: list[Any]) -> float | None:
    return fmean(float(v) for v in values) if values else None


def _collected_share(model: ForecastModel, qid: str, option: str) -> float | None:
    return _share(model.collected(qid), option)


def _collected_mean(model: ForecastModel, qid: str) -> float | None:
    return _mean(model.collected(qid))
