"""NPCWorldModel: NPCs on a relationship graph who talk, remember and change their minds.

One step: the step's events reach every NPC as rumours -> the player (if scripted for this
step, or given a goal) talks to one NPC -> up to ``conversations_per_step`` pairs of
connected NPCs talk, no NPC in two conversations at once -> all conversations run turn by
turn through the gateway (see :mod:`sandbox.npc.dialogue`) -> each NPC remembers the
conversation and updates its relationship with the other -> metrics -> one transaction.
Topics come from the step's events, else from the player's lines, else from the opener's
goals. NPCs are fixed to the cells of a Mesa network over the graph; the model works on them
through ``AgentSet`` operations on ``self.agents`` (graph-node order). Everything random comes
from the model's seeded ``random``.
"""

from __future__ import annotations

import asyncio
from statistics import fmean
from typing import Any

import mesa
import networkx as nx
from mesa.discrete_space import Network

from personahub.llm import LLMClient
from personahub.worlds import World
from sandbox.npc.agent import NPCAgent, describe_relation
from sandbox.npc.dialogue import Conversation, Speaker, hold_conversations
from sandbox.npc.profiles import npc_system_prompt, player_system_prompt
from sandbox.npc.scenario import NPCWorldScenario
from sandbox.population import PersonaRecord
from sandbox.recorded_model import RecordedModel
from sandbox.rundb import PLAYER_ID, RunDatabase

MEMORY_CHARS = 160


def _clip(text: str, limit: int = MEMORY_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def with_relationships(
    profiles: list[dict[str, Any]], graph: nx.Graph[int]
) -> list[dict[str, Any]]:
    """Profiles that also name who each NPC knows on the graph, and how (the edge label)."""
    out = []
    for node, profile in enumerate(profiles):
        known = [
            {
                "name": profiles[other].get("name", f"NPC {other}"),
                "relation": data.get("relation", ""),
            }
            for other, data in sorted(graph.adj[node].items())
        ]
        out.append({**profile, "relationships": known})
    return out


class NPCWorldModel(RecordedModel):
    """An NPC-world run.

    Args:
        scenario: The validated scenario (``mode: npc_world``, world filled in).
        personas: One persona per NPC; NPC ``i`` sits on graph node ``i``.
        profiles: One NPC profile per persona.
        graph: Relationship graph over nodes ``0..n-1``.
        llm: The gateway client.
        seed: Seed of everything random in the run.
        run_id: The run's id in ``database``.
        database: Where steps are recorded; None runs without recording.
        loop: The event loop that drives the gateway (the caller owns it).

    Attributes:
        space: The Mesa network over ``graph``; NPC ``i`` is fixed to the cell of node ``i``.
        by_node: The NPCs in graph-node order (the runner writes agent and edge rows from it
            and checks agent ids on resume). ``self.agents`` holds the same NPCs in the same
            order, since they are created node by node.
        by_id: The NPCs by agent id, for the conversation sides (Mesa keeps no such index).
    """

    def __init__(
        self,
        scenario: NPCWorldScenario,
        personas: list[PersonaRecord],
        profiles: list[dict[str, Any]],
        graph: nx.Graph[int],
        llm: LLMClient,
        *,
        seed: int,
        run_id: str = "",
        database: RunDatabase | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ):
        super().__init__(seed=seed)
        assert isinstance(scenario.world, World), "load_scenario fills in the world"
        self.scenario = scenario
        self.world: World = scenario.world
        self.run_seed = seed
        self.llm = llm
        self.graph = graph
        self.run_id = run_id
        self.database = database
        self.loop = loop or asyncio.new_event_loop()
        self.space = Network(graph, capacity=1, random=self.random)
        memory = scenario.dialogue.memory_size
        profiles = with_relationships(profiles, graph)
        self.by_node: list[NPCAgent] = [
            NPCAgent(
                self,
                persona,
                profile,
                npc_system_prompt(profile, self.world),
                memory,
                self.space[node],
            )
            for node, (persona, profile) in enumerate(zip(personas, profiles, strict=True))
        ]
        self.by_id = {a.unique_id: a for a in self.by_node}
        self.next_conversation = 0
        self.unit = "conversations"
        self.last: dict[str, float] = {}
        self.datacollector = mesa.DataCollector(
            model_reporters={
                "conversations": lambda m: m.last.get("conversations", 0),
                "turns": lambda m: m.last.get("turns", 0),
                "failed_turns": lambda m: m.last.get("failed_turns", 0),
                "repeats_cut": lambda m: m.last.get("repeats_cut", 0),
                "mean_attitude": lambda m: m.mean_relation("attitude"),
                "mean_strength": lambda m: m.mean_relation("strength"),
            }
        )

    @property
    def current_step(self) -> int:
        return self.steps - 1

    def mean_relation(self, key: str) -> float | None:
        values = [r[key] for relations in self.agents.get("relations") for r in relations.values()]
        return fmean(values) if values else None

    def _speaker(self, agent: NPCAgent) -> Speaker:
        def relation_to(other: int) -> str:
            known = agent.relations.get(other)
            return describe_relation(known["attitude"], known["strength"]) if known else ""

        return Speaker(
            agent.unique_id, agent.label, agent.system_prompt(), [], list(agent.memory), relation_to
        )

    def _player_speaker(self, lines: list[str]) -> Speaker | None:
        player = self.scenario.player
        if player is None:
            return None
        label = f"{player.name}, {player.description}"
        if lines:
            return Speaker(PLAYER_ID, label, None, list(lines))
        if player.goal:
            return Speaker(PLAYER_ID, label, player_system_prompt(player, self.world))
        return None

    def _player_target(self, to: str | None) -> NPCAgent:
        if to:
            words = to.lower().split()

            def named(agent: NPCAgent) -> bool:
                text = f"{agent.label} {agent.persona.text}".lower()
                return all(w in text for w in words)

            matches = self.agents.select(named, at_most=1)
            if matches:
                named_agent: NPCAgent = matches[0]
                return named_agent
        anyone: NPCAgent = self.random.choice(self.by_node)
        return anyone

    def _topic(self, opener: NPCAgent, rumours: list[str]) -> str:
        if rumours:
            return f"the news that {rumours[-1]}"
        goals = opener.profile.get("goals") or []
        if goals:
            return f"{opener.name}'s goal: {self.random.choice(goals)}"
        return f"life in {self.world.name}"

    def _conversations(self, step: int, rumours: list[str]) -> list[Conversation]:
        out: list[Conversation] = []
        busy: set[int] = set()
        dialogue = self.scenario.dialogue
        lines = (
            [ln for ln in self.scenario.player.lines if ln.step == step]
            if self.scenario.player
            else []
        )
        player = self._player_speaker([ln.say for ln in lines])
        if player is not None:
            npc = self._player_target(lines[0].to if lines else None)
            busy.add(npc.unique_id)
            topic = _clip(lines[0].say) if lines else _clip(self.scenario.player.goal or "")  # type: ignore[union-attr]
            turns = max(dialogue.turns, 2 * len(lines))
            out.append(self._new(step, topic, player, self._speaker(npc), turns))
        edges = sorted(self.graph.edges())
        self.random.shuffle(edges)
        for u, v in edges:
            if len(out) - (player is not None) >= dialogue.conversations_per_step:
                break
            a, b = self.by_node[u], self.by_node[v]
            if a.unique_id in busy or b.unique_id in busy:
                continue
            busy.update((a.unique_id, b.unique_id))
            if self.random.random() < 0.5:
                a, b = b, a
            topic = self._topic(a, rumours)
            out.append(self._new(step, topic, self._speaker(a), self._speaker(b), dialogue.turns))
        return out

    def _new(self, step: int, topic: str, a: Speaker, b: Speaker, turns: int) -> Conversation:
        conversation = Conversation(self.next_conversation, step, topic, a, b, turns)
        self.next_conversation += 1
        return conversation

    def _settle(self, conversation: Conversation) -> None:
        """Memories and relationship updates of both NPC sides."""
        for me, other in (
            (conversation.first, conversation.second),
            (conversation.second, conversation.first),
        ):
            agent = self.by_id.get(me.id)
            if agent is None:
                continue  # the player keeps no state
            mine, theirs = conversation.last_line_of(me.id), conversation.last_line_of(other.id)
            who = other.label.split(",")[0]
            agent.remember(
                _clip(
                    f"Day {conversation.step + 1}, with {who} about {conversation.topic}: "
                    f"they said '{_clip(theirs, 70)}'; you said '{_clip(mine, 70)}'"
                )
            )
            partner = self.by_id.get(other.id)
            strength = agent.tie_strength(partner) if partner is not None else 0.5
            agent.feel(other.id, conversation.feelings.get(me.id, []), strength)

    def step(self) -> None:
        step = self.current_step
        messages: list[dict[str, Any]] = []
        rumours: list[str] = []
        for event in self.scenario.timeline:
            if event.step == step:
                rumours.append(event.content)
                self.agents.do(
                    "remember", _clip(f"Day {step + 1}: {event.source} says {event.content}")
                )
                messages.append(
                    {
                        "run_id": self.run_id,
                        "step": step,
                        "kind": "event",
                        "src_agent": None,
                        "dst_agent": -1,
                        "relation": "",
                        "source": event.source,
                        "content": event.content,
                    }
                )
        conversations = self._conversations(step, rumours)
        if self.on_step_start is not None:
            self.on_step_start(step, len(conversations))
        self.loop.run_until_complete(
            hold_conversations(
                self.llm,
                conversations,
                self.run_seed,
                self.scenario.llm.temperature,
                self.on_turn,
            )
        )
        turns: list[dict[str, Any]] = []
        for conversation in conversations:
            self._settle(conversation)
            turns.extend({"run_id": self.run_id, **row} for row in conversation.rows)
        self.last = {
            "conversations": len(conversations),
            "turns": len(turns),
            "failed_turns": sum(t["error_kind"] is not None for t in turns),
            "repeats_cut": sum(c.repeats for c in conversations),
        }
        self.record_step(step, messages=messages, turns=turns)

    def restore(
        self,
        last_step: int,
        rng_state: list[Any],
        states: dict[int, tuple[int, dict[str, Any]]],
        next_conversation: int,
        metrics: list[dict[str, Any]],
    ) -> None:
        """Continue after ``last_step`` from saved NPC states (every change is saved)."""
        self.restore_run_state(last_step, rng_state, metrics)
        saved = self.agents.select(lambda a: a.unique_id in states)
        saved.do(lambda a: a.restore(states[a.unique_id][1]))
        self.next_conversation = next_conversation
