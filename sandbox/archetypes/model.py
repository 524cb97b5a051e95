"""ArchetypeModel: the Mesa model of ``mode: archetypes``, a vectorised population behind it.

One step: deliver the step's events -> draw who acts (agents with something new, each with the
activation chance) -> bucket the acting agents by archetype -> one request per archetype (per
question in ``logprobs`` mode), plus the fidelity sample's own requests, as one concurrent batch
through the gateway -> every acting agent draws its answers from its archetype's distribution
with its own seeded generator -> posters' stances reach their neighbours through the CSR graph
-> write the agents' state (Parquet) and the archetypes of the step, then record the step's
requests and metrics in the run database (one transaction, the commit point).

There is no Python object per agent (see :mod:`sandbox.archetypes.population`); Mesa is the
model API (``step``, ``steps``, ``running``, ``DataCollector``), the arrays are its state.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import mesa
import numpy as np

from personahub.llm import LLMClient, LLMResult
from sandbox.archetypes import draws
from sandbox.archetypes.asking import Ask, asks, distributions
from sandbox.archetypes.buckets import Buckets, bucket
from sandbox.archetypes.network import CSRGraph
from sandbox.archetypes.population import AgentTable
from sandbox.archetypes.scenario import ArchetypeScenario
from sandbox.archetypes.state import PopulationState
from sandbox.forecast.answer_modes import option_labels
from sandbox.recorded_model import RecordedModel
from sandbox.rundb import RunDatabase

ACTIVATE, POST, FIDELITY, ANSWER = 1, 2, 3, 100  # draws' streams


class ArchetypeModel(RecordedModel):
    """A scenario run answered per archetype.

    Args:
        scenario: The validated scenario.
        table: The agents' attributes.
        graph: The relationship graph.
        llm: The gateway client.
        seed: The run seed.
        run_id: The run's id in ``database``.
        database: Where steps are recorded (None: not recorded).
        loop: The event loop that drives the gateway.
        folder: Where the per-step Parquet files go (``steps/``).
    """

    def __init__(
        self,
        scenario: ArchetypeScenario,
        table: AgentTable,
        graph: CSRGraph,
        llm: LLMClient,
        *,
        seed: int,
        run_id: str = "",
        database: RunDatabase | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        folder: Path | None = None,
    ):
        super().__init__(seed=seed)
        self.scenario = scenario
        self.table = table
        self.graph = graph
        self.llm = llm
        self.run_seed = seed
        self.run_id = run_id
        self.database = database
        self.loop = loop or asyncio.new_event_loop()
        self.folder = folder
        self.unit = "requests"
        self.by_node: tuple[Any, ...] = ()  # no agent objects: see the module docstring
        self.labels = [option_labels(q) for q in scenario.questions]
        self.state = PopulationState.empty(table.n, len(scenario.questions), len(self.labels[0]))
        self.pending = np.zeros(table.n, dtype=bool)  # saw something new since it last acted
        self.last: dict[str, Any] = {}
        self.last_probs: list[list[np.ndarray] | None] = []
        self.last_archetypes: list[Any] = []
        self.datacollector = mesa.DataCollector(model_reporters=self._reporters())

    @property
    def current_step(self) -> int:
        return self.steps - 1

    def _reporters(self) -> dict[str, Any]:
        reporters: dict[str, Any] = {
            "aware": lambda m: float(m.state.aware.mean()),
            "active": lambda m: m.last.get("active", 0),
            "archetypes": lambda m: m.last.get("archetypes", 0),
            "calls": lambda m: m.last.get("calls", 0),
            "per_agent_calls": lambda m: m.last.get("per_agent_calls", 0),
            "posts": lambda m: m.last.get("posts", 0),
            "errors": lambda m: m.last.get("errors", 0),
        }
        for qi, question in enumerate(self.scenario.questions):
            for oi, label in enumerate(self.labels[qi]):
                reporters[f"{question.id}={label}"] = _share_reporter(qi, oi)
            reporters[f"{question.id}:n"] = _answered_reporter(qi)
            reporters[f"{question.id}:fidelity_gap"] = _gap_reporter(question.id)
        return reporters

    # -- the step -------------------------------------------------------------------------

    def _deliver(self, step: int) -> list[dict[str, Any]]:
        messages = []
        for index, event in enumerate(self.scenario.timeline):
            if event.step != step:
                continue
            if event.channel == "broadcast":
                reached = np.ones(self.table.n, dtype=bool)
            elif event.channel == "targeted":
                assert event.target is not None
                reached = self._matching(event.target)
            else:
                assert event.k is not None
                rng = np.random.default_rng([self.run_seed, step, index])
                reached = np.zeros(self.table.n, dtype=bool)
                reached[rng.choice(self.table.n, min(event.k, self.table.n), replace=False)] = True
            self.state.events[reached] |= np.uint32(1 << index)
            self.state.aware |= reached
            self.pending |= reached
            messages.append(
                {
                    "run_id": self.run_id,
                    "step": step,
                    "kind": "event",
                    "src_agent": None,
                    "dst_agent": -1,  # one row stands for every agent it reached
                    "relation": f"reached {int(reached.sum())}",
                    "source": event.source,
                    "content": event.content,
                }
            )
        return messages

    def _matching(self, target: Any) -> np.ndarray:
        known = {k: v for k, v in target.attributes.items() if k in self.table.codes}
        mask = self.table.mask(known)
        if len(known) < len(target.attributes):
            mask[:] = False  # an attribute no agent has: nobody matches (validate says so)
        if self.table.texts is not None and (target.regex or target.contains_any):
            texts = self.table.texts
            for agent in np.flatnonzero(mask).tolist():
                mask[agent] = target.matches(texts[agent], self.table.attributes_of(agent))
        return mask

    def _fidelity(self, buckets: Buckets, step: int) -> dict[int, list[tuple[int, str]]]:
        k = self.scenario.archetype.fidelity
        if k == 0:
            return {}
        u = draws.uniforms(buckets.agents, self.run_seed, step, FIDELITY)
        order = np.lexsort((u, buckets.member_of))  # by archetype, then the agents' own draw
        first = np.searchsorted(buckets.member_of[order], np.arange(len(buckets.archetypes)))
        chosen: dict[int, list[tuple[int, str]]] = {}
        for index, start in enumerate(first.tolist()):
            size = buckets.archetypes[index].size
            members = buckets.agents[order[start : start + min(k, size)]]
            chosen[index] = [(int(a), self.table.persona(int(a))) for a in members]
        return chosen

    def step(self) -> None:
        step = self.current_step
        messages = self._deliver(step)
        everyone = np.arange(self.table.n, dtype=np.int64)
        acting = self.pending & (
            draws.uniforms(everyone, self.run_seed, step, ACTIVATE)
            < self.scenario.interaction.activation
        )
        agents = np.flatnonzero(acting)
        buckets = bucket(
            self.table,
            self.scenario.archetype.attributes,
            self.state,
            agents,
            self.scenario.archetype.heard_bins,
            per_agent=self.scenario.archetype.per_agent,
        )
        personas = (
            # one archetype per agent, in key order: archetype j is agent agents[order[j]]
            [self.table.persona(int(a)) for a in agents[np.argsort(buckets.member_of)]]
            if self.scenario.archetype.per_agent
            else None
        )
        plan = asks(
            self.scenario,
            buckets.archetypes,
            self._fidelity(buckets, step),
            self.run_seed,
            step,
            personas,
        )
        requests = [r for ask in plan for r in ask.requests]
        if self.on_step_start is not None:
            self.on_step_start(step, len(requests))
        flat = self.loop.run_until_complete(self.llm.batch(requests, on_result=self.on_result))
        results = _regroup(plan, flat)
        answered, gaps = self._apply(buckets, plan, results, step)
        posts = self._spread(agents[answered[buckets.member_of]], step)
        self.pending[agents] = False
        self.pending |= posts > 0
        self.state.acted[agents] += 1
        self.last = {
            "active": len(agents),
            "archetypes": len(buckets.archetypes),
            "calls": len(requests),
            "per_agent_calls": len(agents) * (len(requests) // max(1, len(plan))),
            "posts": int((posts > 0).sum()),
            "errors": sum(r.error is not None for r in flat),
            "gaps": gaps,
        }
        self._write(step, buckets, plan, results)
        self.record_step(step, messages=messages, interactions=_rows(self, plan, results, step))

    def _apply(
        self, buckets: Buckets, plan: list[Ask], results: list[list[LLMResult[Any]]], step: int
    ) -> tuple[np.ndarray, dict[str, float | None]]:
        """Draw the acting agents' answers; returns which archetypes answered and the fidelity
        gap per question (size-weighted mean TV distance, archetype vs its sample)."""
        n_arch = len(buckets.archetypes)
        probs: list[list[np.ndarray] | None] = [None] * n_arch
        sampled: dict[int, list[list[np.ndarray]]] = {}
        for ask, result in zip(plan, results, strict=True):
            found = distributions(self.scenario, result)
            if ask.agent is None:
                probs[ask.archetype] = found
            elif found is not None:
                sampled.setdefault(ask.archetype, []).append(found)
        answered = np.array([p is not None for p in probs], dtype=bool)
        self.last_probs = probs
        self.last_archetypes = buckets.archetypes
        agents = buckets.agents
        ok = answered[buckets.member_of]
        gaps: dict[str, float | None] = {}
        for qi, question in enumerate(self.scenario.questions):
            width = len(self.labels[qi])
            table = np.array([p[qi] if p is not None else np.full(width, 1 / width) for p in probs])
            if n_arch == 0:
                gaps[question.id] = None
                continue
            u = draws.uniforms(agents, self.run_seed, step, ANSWER + qi)
            codes = draws.draw(table, buckets.member_of, u)
            self.state.answers[agents[ok], qi] = codes[ok]
            weighted = [
                (buckets.archetypes[a].size, _tv(found[qi], np.mean([s[qi] for s in own], axis=0)))
                for a, own in sampled.items()
                if (found := probs[a]) is not None
            ]
            gaps[question.id] = (
                sum(w * g for w, g in weighted) / sum(w for w, _ in weighted) if weighted else None
            )
        return answered, gaps

    def _spread(self, answered_agents: np.ndarray, step: int) -> np.ndarray:
        """Posts of the agents that answered reach their neighbours; returns posts heard per
        agent this step."""
        if not self.scenario.interaction.word_of_mouth or len(answered_agents) == 0:
            return np.zeros(self.table.n, dtype=np.int64)
        u = draws.uniforms(answered_agents, self.run_seed, step, POST)
        posters = answered_agents[u < self.scenario.interaction.post_share]
        senders = np.zeros(self.table.n, dtype=bool)
        senders[posters] = True
        stance = np.clip(self.state.answers[:, 0], 0, None).astype(np.int64)
        counts = self.graph.neighbour_counts(senders, stance, len(self.labels[0]))
        self.state.hear(counts)
        return counts.sum(axis=1)

    # -- storage --------------------------------------------------------------------------

    def _write(
        self, step: int, buckets: Buckets, plan: list[Ask], results: list[list[LLMResult[Any]]]
    ) -> None:
        """The step's agent state and archetypes as Parquet, before the database commit: a
        step the database records always has its files (a killed write is redone on resume)."""
        if self.folder is None:
            return
        from sandbox.archetypes.storage import write_archetypes

        steps = self.folder / "steps"
        steps.mkdir(parents=True, exist_ok=True)
        self.state.save(steps / f"state_{step:04d}.parquet")
        np.save(steps / f"pending_{step:04d}.npy", self.pending)
        write_archetypes(steps / f"archetypes_{step:04d}.parquet", self, buckets)

    def restore_state(self, step: int) -> None:
        assert self.folder is not None
        steps = self.folder / "steps"
        self.state = PopulationState.load(steps / f"state_{step:04d}.parquet")
        self.pending = np.load(steps / f"pending_{step:04d}.npy")


def _tv(p: np.ndarray, q: np.ndarray) -> float:
    """Total-variation distance between two distributions over the same options."""
    return 0.5 * float(np.abs(p - q).sum())


def _regroup(plan: list[Ask], flat: list[LLMResult[Any]]) -> list[list[LLMResult[Any]]]:
    out, at = [], 0
    for ask in plan:
        out.append(flat[at : at + len(ask.requests)])
        at += len(ask.requests)
    return out


def _rows(
    model: ArchetypeModel, plan: list[Ask], results: list[list[LLMResult[Any]]], step: int
) -> list[dict[str, Any]]:
    from sandbox.archetypes.storage import interaction_rows

    return interaction_rows(model, plan, results, step)


def _share_reporter(qi: int, oi: int) -> Any:
    def share(model: ArchetypeModel) -> float | None:
        answers = model.state.answers[:, qi]
        given = answers >= 0
        return float((answers[given] == oi).mean()) if given.any() else None

    return share


def _answered_reporter(qi: int) -> Any:
    return lambda model: int((model.state.answers[:, qi] >= 0).sum())


def _gap_reporter(qid: str) -> Any:
    return lambda model: model.last.get("gaps", {}).get(qid)
