"""NPCAgent: a persona playing a game character, with memories and relationships.

An NPC remembers its last conversations (bounded) and keeps, per partner, an *attitude*
(-1 hostile .. +1 friendly) and a *tie strength* (0..1). Both change after each
conversation from how the NPC said it felt, turn by turn (warmer, the same, cooler).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from mesa.discrete_space import Cell, FixedAgent

from sandbox.population import PersonaRecord

if TYPE_CHECKING:
    from sandbox.npc.model import NPCWorldModel

ATTITUDE_STEP = 0.3  # attitude change of a conversation felt "warmer" on every turn
STRENGTH_STEP = 0.1  # every conversation ties two NPCs a little closer
FEELINGS = {"warmer": 1, "same": 0, "cooler": -1}


def describe_relation(attitude: float, strength: float) -> str:
    """Words for a relationship, as the speaker reads it in the prompt."""
    mood = (
        "you dislike them"
        if attitude <= -0.4
        else "you are wary of them"
        if attitude < -0.1
        else "you like them"
        if attitude >= 0.4
        else "you are friendly"
        if attitude > 0.1
        else "neutral"
    )
    closeness = "close" if strength >= 0.7 else "acquainted" if strength >= 0.3 else "barely know"
    return f"{mood}; {closeness}"


class NPCAgent(FixedAgent):
    """A game character, fixed to one cell (graph node) of the model's network.

    Args:
        model: The Mesa model.
        persona: The persona it was made from.
        profile: Its NPC profile (name, role, backstory, goals, speaking style, ...).
        system_prompt: The system message it speaks under.
        memory_size: Conversations remembered verbatim.
        cell: Its cell in the model's :class:`~mesa.discrete_space.Network`.
    """

    model: NPCWorldModel

    def __init__(
        self,
        model: NPCWorldModel,
        persona: PersonaRecord,
        profile: dict[str, Any],
        system_prompt: str,
        memory_size: int,
        cell: Cell,
    ) -> None:
        super().__init__(model)
        self.cell = cell
        self.persona = persona
        self.profile = profile
        self._system_prompt = system_prompt
        self.memory: deque[str] = deque(maxlen=memory_size)
        self.relations: dict[int, dict[str, float]] = {}
        self.dirty = False

    def system_prompt(self) -> str:
        """The system message the NPC speaks under (world and profile)."""
        return self._system_prompt

    @property
    def name(self) -> str:
        return str(self.profile.get("name", f"NPC {self.unique_id}"))

    @property
    def label(self) -> str:
        """Name and role, the way others see the NPC."""
        return f"{self.name}, {self.profile.get('role', 'a local')}"

    def tie_strength(self, other: NPCAgent, default: float = 0.5) -> float:
        """Strength of the graph edge to ``other``; ``default`` if their cells are not connected."""
        if other.cell.coordinate not in self.cell.connections:
            return default
        edge = self.model.graph.adj[self.cell.coordinate][other.cell.coordinate]
        return float(edge.get("strength", default))

    def relation(self, other: int, strength: float = 0.5) -> dict[str, float]:
        """The relationship with agent ``other`` (created neutral on first use)."""
        return self.relations.setdefault(other, {"attitude": 0.0, "strength": strength})

    def remember(self, line: str) -> None:
        self.memory.append(line)
        self.dirty = True

    def feel(self, other: int, feelings: list[str], base_strength: float = 0.5) -> None:
        """Update the relationship with ``other`` after a conversation."""
        relation = self.relation(other, base_strength)
        if feelings:
            mean = sum(FEELINGS.get(f, 0) for f in feelings) / len(feelings)
            relation["attitude"] = max(-1.0, min(1.0, relation["attitude"] + ATTITUDE_STEP * mean))
        relation["strength"] = min(1.0, relation["strength"] + STRENGTH_STEP)
        relation["talks"] = relation.get("talks", 0) + 1
        self.dirty = True

    def state(self) -> dict[str, Any]:
        """What a resumed run needs: memories and relationships."""
        return {
            "memory": list(self.memory),
            "relations": {str(k): dict(v) for k, v in self.relations.items()},
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.memory.clear()
        self.memory.extend(state.get("memory", []))
        self.relations = {int(k): dict(v) for k, v in state.get("relations", {}).items()}
