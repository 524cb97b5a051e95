"""NPC-world mode's part of the mode registry (:mod:`sandbox.modes`): how its runs are built
(NPC profiles first), resumed, recorded and described."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from personahub.worlds import World
from sandbox.npc.model import NPCWorldModel
from sandbox.npc.profiles import write_profiles
from sandbox.npc.scenario import NPCWorldScenario

if TYPE_CHECKING:
    from sandbox.modes import RunModel, RunSetup
    from sandbox.rundb import AgentRow, RunDatabase, RunRow


def _model(
    setup: RunSetup, scenario: NPCWorldScenario, profiles: list[dict[str, Any]]
) -> NPCWorldModel:
    return NPCWorldModel(
        scenario,
        setup.personas,
        profiles,
        setup.graph,
        setup.llm,
        seed=setup.seed,
        run_id=setup.run_id,
        database=setup.database,
        loop=setup.loop,
    )


def build(setup: RunSetup) -> NPCWorldModel:
    """The model of a new run: one profile written per persona first (the model's calls)."""
    scenario = setup.scenario
    assert isinstance(scenario, NPCWorldScenario) and isinstance(scenario.world, World)
    profiles = write_profiles(setup.llm, setup.loop, setup.personas, scenario.world, scenario.seed)
    return _model(setup, scenario, profiles)


def rebuild(setup: RunSetup, agents: list[AgentRow]) -> NPCWorldModel:
    """The model of a run being resumed, from the profiles in its agent rows."""
    scenario = setup.scenario
    assert isinstance(scenario, NPCWorldScenario)
    return _model(setup, scenario, [dict(row.profile or {}) for row in agents])


def restore(model: RunModel, database: RunDatabase, run: RunRow) -> None:
    """NPC states (every change is saved), random state, metrics and the conversation count."""
    assert isinstance(model, NPCWorldModel)
    turns = database.dialogue_turns(run.id)
    model.restore(
        run.last_step,
        run.rng_state or [],
        database.states(run.id),
        max((t.conversation for t in turns), default=-1) + 1,
        [row.metrics for row in database.step_metrics(run.id)],
    )


def agent_row(agent: Any) -> dict[str, Any]:
    """The NPC's system prompt (world, profile, relationships) and profile: what the dialogue
    export uses as a sample's system message."""
    return {"system_prompt": agent.system_prompt(), "profile": agent.profile}
