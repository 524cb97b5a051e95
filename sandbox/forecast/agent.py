"""PersonaAgent: a persona as a Mesa agent, with bounded memory and answers per question.

This is where an agent decides. Each step an active agent turns what it observed into one
structured request (:meth:`PersonaAgent.build_request`) and applies the validated answer
(:meth:`PersonaAgent.apply`). The agent never calls the model itself: the model batches every
agent's request through the gateway at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mesa.discrete_space import Cell, FixedAgent

from personahub import prompts
from personahub.llm import LLMRequest
from personahub.llm.seeds import request_seed
from sandbox.forecast.answer_modes import (
    AgentTurn,
    distribution_questions,
    option_request,
    step_questions,
)
from sandbox.forecast.answers import AgentResponse
from sandbox.forecast.scenario import ForecastScenario
from sandbox.population import PersonaRecord

if TYPE_CHECKING:
    from sandbox.forecast.model import ForecastModel

SUMMARY_EVENTS = 4


def relation_source(relation: str) -> str:
    """How a neighbour is introduced to the agent who reads their post."""
    return f"someone you know ({relation})" if relation else "someone you know"


@dataclass(frozen=True, slots=True)
class Observation:
    """Something an agent saw: an event, or a post by a neighbour.

    Attributes:
        step: When it arrived.
        kind: ``"event"`` or ``"post"``.
        source: Who it came from, as the agent is told (``"the news"``, ``"your neighbour"``).
        content: What was said.
        strength: Tie strength for posts (1.0 for events); stronger ties are shown first.
        sender: The posting agent's id, for posts.
    """

    step: int
    kind: str
    source: str
    content: str
    strength: float = 1.0
    sender: int | None = None

    def to_json(self) -> dict[str, Any]:
        # dataclasses.asdict deep-copies recursively: 20x slower at 100k agents
        return {
            "step": self.step,
            "kind": self.kind,
            "source": self.source,
            "content": self.content,
            "strength": self.strength,
            "sender": self.sender,
        }


class PersonaAgent(FixedAgent):
    """An agent that plays one persona, fixed to one cell (graph node) of the model's network.

    Args:
        model: The sandbox model.
        persona: The persona it plays.
        memory_size: Observations kept verbatim; older ones roll into the summary.
        cell: Its cell in the model's :class:`~mesa.discrete_space.Network`.

    Attributes:
        inbox: Observations not yet acted on.
        memory: The last ``memory_size`` observations acted on.
        answers: Current answer per question id (absent until first answered).
        distributions: Current answer distribution per choice/likert question id, outside
            the ``sample`` answer mode (absent until first answered).
        reaction: The agent's latest reaction, in its own words.
        aware: Whether it has heard anything about the scenario yet.
    """

    model: ForecastModel

    def __init__(self, model: ForecastModel, persona: PersonaRecord, memory_size: int, cell: Cell):
        super().__init__(model)
        self.cell = cell
        self.persona = persona
        self.inbox: list[Observation] = []
        self.memory: deque[Observation] = deque(maxlen=memory_size)
        self.answers: dict[str, Any] = {}
        self.distributions: dict[str, dict[str, float]] = {}
        self.reaction = ""
        self.aware = False
        self.acted = 0
        self.forgotten = 0
        self.headlines: list[str] = []
        self.shown: list[Observation] = []  # what the latest request showed as new
        # A fresh agent is what a rebuilt model starts from anyway: nothing to save yet.
        self.dirty = False

    def observe(self, observation: Observation, persist: bool = True) -> None:
        """Add to the inbox. ``persist=False`` for events: the run database records event
        deliveries anyway, so resume replays them instead of saving 100k agent states."""
        self.inbox.append(observation)
        self.aware = True
        if persist:
            self.dirty = True

    def neighbours(self) -> Iterator[tuple[PersonaAgent, dict[str, Any]]]:
        """The agents on the cells connected to this one, with the edge's data
        (``relation``, ``strength``), in graph-node order so that runs replay exactly."""
        edges = self.model.graph.adj[self.cell.coordinate]
        for node, cell in sorted(self.cell.connections.items(), key=lambda item: item[0]):
            for agent in cell.agents:
                yield agent, edges[node]

    def share(self, post: str, step: int) -> list[tuple[PersonaAgent, str]]:
        """Pass ``post`` to every neighbour; returns who got it, with the relation."""
        reached = []
        for neighbour, edge in self.neighbours():
            relation = edge.get("relation", "")
            strength = float(edge.get("strength", 1.0))
            neighbour.observe(
                Observation(step, "post", relation_source(relation), post, strength, self.unique_id)
            )
            reached.append((neighbour, relation))
        return reached

    def summary(self) -> str:
        """A short rolling summary of what fell out of memory and where the agent stands."""
        parts = []
        if self.headlines:
            parts.append("you heard that " + "; ".join(self.headlines))
        if self.forgotten:
            parts.append(f"{self.forgotten} older messages you only vaguely recall")
        if self.reaction:
            parts.append(f'last time you said: "{self.reaction}"')
        if self.answers:
            stance = ", ".join(f"{k} = {v}" for k, v in self.answers.items())
            parts.append(f"your answers then were {stance}")
        return "; ".join(parts)

    def system_prompt(self) -> str:
        """The system message the agent speaks under (its persona)."""
        return prompts.render("agent_system", package="sandbox", persona=self.persona.text)

    def build_request(
        self, scenario: ForecastScenario, schema: type[AgentResponse], step: int, run_seed: int
    ) -> LLMRequest[AgentResponse]:
        """The agent's structured request for this step, from its persona, memory and inbox."""
        return self.build_requests(scenario, schema, step, run_seed)[0]

    def build_requests(
        self, scenario: ForecastScenario, schema: type[AgentResponse], step: int, run_seed: int
    ) -> list[LLMRequest[Any]]:
        """The agent's requests for this step: the structured one, then (``logprobs`` answer
        mode) one option request per choice/likert question, all seeing the same context.
        Without ``interaction.reactions`` in that mode, the option requests alone."""
        events = [o for o in self.inbox if o.kind == "event"]
        posts = sorted(
            (o for o in self.inbox if o.kind == "post"), key=lambda o: (-o.strength, o.sender or 0)
        )[: scenario.interaction.posts_seen]
        new = events + posts
        self.shown = new
        system = self.system_prompt()
        context = {"summary": self.summary(), "memory": list(self.memory), "new": new}
        user = prompts.render(
            "agent_step", package="sandbox", questions=step_questions(scenario), **context
        )
        seed = request_seed(run_seed, step, self.unique_id)
        request: LLMRequest[Any] = LLMRequest(
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            schema=schema,
            temperature=scenario.llm.temperature,
            max_tokens=scenario.llm.max_tokens,
            seed=seed,
            tag="agent_step",
        )
        if scenario.answer_mode != "logprobs":
            return [request]
        options = [
            option_request(self.persona.text, context, q, seed)
            for q in distribution_questions(scenario)
        ]
        return [request, *options] if scenario.step_reply else options

    def shown_json(self) -> list[dict[str, Any]]:
        """What the latest request showed the agent as new, for its interaction row."""
        return [o.to_json() for o in self.shown]

    def _remember(self) -> None:
        for observation in self.inbox:
            if len(self.memory) == self.memory.maxlen:
                old = self.memory[0]
                self.forgotten += 1
                if old.kind == "event" and len(self.headlines) < SUMMARY_EVENTS:
                    self.headlines.append(old.content[:80])
            self.memory.append(observation)
        self.inbox = []

    def apply(self, turn: AgentTurn) -> str:
        """Take in the model's answers (:func:`~sandbox.forecast.answer_modes.combine`);
        returns the post to share ("" for none).

        A failed turn leaves the agent's answers as they were; what it saw stays in memory.
        """
        self._remember()
        self.acted += 1
        self.dirty = True
        if turn.parsed is None:
            return ""
        self.answers.update(turn.answers)
        self.distributions.update(turn.distributions)
        parsed = turn.result.parsed
        if parsed is None:  # a step of option requests alone: no reaction, no post
            return ""
        self.reaction = parsed.reaction.strip()
        return str(parsed.post).strip()

    def state(self) -> dict[str, Any]:
        """Everything needed to restore this agent on resume (plain JSON data)."""
        return {
            "inbox": [o.to_json() for o in self.inbox],
            "memory": [o.to_json() for o in self.memory],
            "answers": self.answers,
            "distributions": self.distributions,
            "reaction": self.reaction,
            "aware": self.aware,
            "acted": self.acted,
            "forgotten": self.forgotten,
            "headlines": self.headlines,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.inbox = [Observation(**o) for o in state["inbox"]]
        self.memory.clear()
        self.memory.extend(Observation(**o) for o in state["memory"])
        self.answers = dict(state["answers"])
        # States saved before answer modes existed have no distributions.
        self.distributions = dict(state.get("distributions") or {})
        self.reaction = state["reaction"]
        self.aware = state["aware"]
        self.acted = state["acted"]
        self.forgotten = state["forgotten"]
        self.headlines = list(state["headlines"])
        self.dirty = False
