"""Scenario sections of ``mode: npc_world``: the world, the dialogue rules, the player."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from personahub.worlds import World


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Dialogue(_Strict):
    """How NPCs talk each step."""

    conversations_per_step: int = Field(
        4, ge=1, le=10_000, description="Pairs of connected NPCs that talk each step, at most."
    )
    turns: int = Field(4, ge=2, le=16, description="Lines per conversation, at most.")
    memory_size: int = Field(6, ge=1, le=50, description="Earlier conversations an NPC recalls.")


class PlayerLine(_Strict):
    """Something the player says at a step, to an NPC (by name, role or persona words)."""

    step: int = Field(ge=0)
    say: str = Field(min_length=1, max_length=400)
    to: str | None = Field(None, description="Words of the NPC's name/role/persona; any if unset.")


class Player(_Strict):
    """A scripted player: fixed lines per step, or a goal the model speaks for."""

    name: str = Field("the player", min_length=1, max_length=60)
    description: str = Field("a stranger who has just arrived", max_length=300)
    goal: str | None = Field(None, max_length=300, description="Speak for the player toward it.")
    lines: list[PlayerLine] = Field(default_factory=list, max_length=200)


WorldSpec = World | str
"""A world inline, or the path of a world YAML/JSON file (relative to the scenario)."""
