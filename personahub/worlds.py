"""Game worlds: the setting NPCs are written for, from YAML/JSON files or inline data.

The ``npc`` synthesis task and the sandbox's NPC-world scenarios share this model, so an NPC
written by ``personahub synthesize --task npc`` fits a world a scenario can run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_WORLD = Path(__file__).resolve().parent / "data" / "worlds" / "saltmere.yaml"


class Place(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=80)
    description: str = Field(default="", max_length=400)


class Faction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=80)
    description: str = Field(default="", max_length=400)


class World(BaseModel):
    """A game world: where it is, who holds power, what everyone knows."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=80)
    setting: str = Field(min_length=1, max_length=1200)
    places: list[Place] = Field(default_factory=list, max_length=20)
    factions: list[Faction] = Field(default_factory=list, max_length=12)
    lore: list[str] = Field(default_factory=list, max_length=20)


class WorldError(ValueError):
    """A world file that cannot be read; one line naming the file and field."""


def parse_world(data: Any, origin: str) -> World:
    """Validate world data, with errors that name ``origin`` and the field.

    Raises:
        WorldError: If the data is not a valid world.
    """
    try:
        return World.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "(top level)"
        raise WorldError(f"{origin}: {where}: {error['msg']}") from None


def load_world(path: str | Path | None = None) -> World:
    """Load a world from a YAML or JSON file (the packaged Saltmere world when None).

    Raises:
        WorldError: Missing file, unparsable file or invalid world.
    """
    file = Path(path) if path is not None else DEFAULT_WORLD
    if not file.is_file():
        raise WorldError(f"world file not found: {file}")
    try:
        text = file.read_text(encoding="utf-8")
        data = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WorldError(f"{file}: cannot read world: {first}") from None
    return parse_world(data, str(file))
