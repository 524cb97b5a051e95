"""NPC profiles from personas, written by the synthesis ``npc`` task for the run's world.

One request per persona, batched. A persona whose request fails still becomes an NPC, with a
plain profile built from the persona itself; the profile says so (``generated: false`` and
the error), and the run goes on. Names are made unique within the world.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from personahub import prompts
from personahub.llm import LLMClient, LLMResult
from personahub.synthesis.prompting import generation_request
from personahub.synthesis.tasks import TASKS, NPCProfile
from personahub.worlds import World
from sandbox.npc.scenario import Player
from sandbox.population import PersonaRecord

PROFILE_MODE = "zero-shot"  # few-shot examples make small models copy the example NPCs


def fallback_profile(index: int, persona: PersonaRecord, world: World) -> dict[str, Any]:
    """A plain profile from the persona alone, for a persona whose request failed."""
    occupation = str(persona.attributes.get("occupation") or "townsperson")
    return NPCProfile(
        name=f"Resident {index + 1}",
        role=occupation[:60],
        backstory=persona.text[:400].replace('"', "'") or "A local.",
        goals=[f"get by in {world.name}"[:100]],
        speaking_style="plain and direct",
        player_interaction="polite but wary of strangers",
    ).model_dump()


def _profile_from(
    result: LLMResult, index: int, persona: PersonaRecord, world: World
) -> dict[str, Any]:
    if result.parsed is not None:
        return {**result.raw_json(), "generated": True}  # type: ignore[dict-item]
    error = str(result.error) if result.error else "no answer"
    return {**fallback_profile(index, persona, world), "generated": False, "error": error}


def _unique_names(profiles: list[dict[str, Any]]) -> None:
    counts = Counter(p["name"] for p in profiles)
    seen: Counter[str] = Counter()
    for profile in profiles:
        name = profile["name"]
        if counts[name] > 1:
            seen[name] += 1
            profile["name"] = f"{name} ({seen[name]})"


def write_profiles(
    client: LLMClient,
    loop: asyncio.AbstractEventLoop,
    personas: list[PersonaRecord],
    world: World,
    seed: int,
) -> list[dict[str, Any]]:
    """One NPC profile per persona (generated, or the fallback when a request fails)."""
    spec = TASKS["npc"]
    requests = [
        generation_request(spec, p.text, PROFILE_MODE, [], world, f"npc-{i}", seed, None)
        for i, p in enumerate(personas)
    ]
    results = loop.run_until_complete(client.batch(requests))
    profiles = [
        _profile_from(result, i, persona, world)
        for i, (result, persona) in enumerate(zip(results, personas, strict=True))
    ]
    _unique_names(profiles)
    return profiles


def npc_system_prompt(profile: dict[str, Any], world: World) -> str:
    """The system message an NPC speaks under: the world, then its profile."""
    return prompts.render("npc_system", package="sandbox", profile=profile, world=world)


def player_system_prompt(player: Player, world: World) -> str:
    """The system message of a player who speaks toward a goal."""
    return prompts.render("player_system", package="sandbox", player=player, world=world)
