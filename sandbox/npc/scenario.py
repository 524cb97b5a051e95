"""The scenario of ``mode: npc_world``: the world, the dialogue rules, the player.

Common sections are in :mod:`sandbox.scenario`; the union of all modes' scenarios is
assembled in :mod:`sandbox.modes`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import Discriminator, Field, Tag

from personahub.worlds import World, WorldError, load_world
from sandbox.scenario import FileProblem, Problem, ScenarioBase, Strict


class Dialogue(Strict):
    """How NPCs talk each step."""

    conversations_per_step: int = Field(
        4, ge=1, le=10_000, description="Pairs of connected NPCs that talk each step, at most."
    )
    turns: int = Field(4, ge=2, le=16, description="Lines per conversation, at most.")
    memory_size: int = Field(6, ge=1, le=50, description="Earlier conversations an NPC recalls.")


class PlayerLine(Strict):
    """Something the player says at a step, to an NPC (by name, role or persona words)."""

    step: int = Field(ge=0)
    say: str = Field(min_length=1, max_length=400)
    to: str | None = Field(None, description="Words of the NPC's name/role/persona; any if unset.")


class Player(Strict):
    """A scripted player: fixed lines per step, or a goal the model speaks for."""

    name: str = Field("the player", min_length=1, max_length=60)
    description: str = Field("a stranger who has just arrived", max_length=300)
    goal: str | None = Field(None, max_length=300, description="Speak for the player toward it.")
    lines: list[PlayerLine] = Field(default_factory=list, max_length=200)


WorldSpec = Annotated[
    Annotated[World, Tag("inline")] | Annotated[str, Tag("file")],
    # Chosen by the value's kind, so an inline world's errors are its own fields' only,
    # not also "expected a string" from the file-path member.
    Discriminator(lambda value: "inline" if isinstance(value, dict | World) else "file"),
]
"""A world inline, or the path of a world YAML/JSON file (relative to the scenario)."""


class NPCWorldScenario(ScenarioBase):
    """An NPC world: NPCs talk among themselves and to a scripted player."""

    mode: Literal["npc_world"]
    world: WorldSpec | None = Field(None, description="npc_world: the world (default Saltmere).")
    dialogue: Dialogue = Field(default_factory=Dialogue)
    player: Player | None = None

    def problems(self) -> list[Problem]:
        out: list[Problem] = [
            (("player", "lines", i, "step"), f"expected a step below steps={self.steps}", line.step)
            for i, line in enumerate(self.player.lines if self.player else [])
            if line.step >= self.steps
        ]
        return out + super().problems()

    def cut(self, data: dict[str, Any], steps: int) -> None:
        super().cut(data, steps)
        if data.get("player"):
            lines = data["player"].get("lines", [])
            data["player"]["lines"] = [ln for ln in lines if ln["step"] < steps]

    def with_files(self, path: Path) -> Self:
        """The scenario with its world file (or the default world) read in."""
        if isinstance(self.world, World):
            return self
        where = None if self.world is None else (path.parent / self.world).resolve()
        try:
            world = load_world(where)
        except WorldError as exc:
            raise FileProblem((("world",), str(exc), None)) from None
        return self.model_copy(update={"world": world})


def describe(scenario: Any) -> list[tuple[str, str]]:
    """The lines ``sandbox validate`` adds for an NPC world."""
    assert isinstance(scenario, NPCWorldScenario)
    player = scenario.player
    return [
        ("world", getattr(scenario.world, "name", str(scenario.world))),
        (
            "dialogue",
            f"{scenario.dialogue.conversations_per_step} conversations/step, "
            f"up to {scenario.dialogue.turns} turns",
        ),
        ("player", f"{player.name}, {len(player.lines)} lines" if player else "-"),
    ]
