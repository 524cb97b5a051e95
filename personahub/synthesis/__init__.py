"""Persona-driven synthesis: the paper's six data types from personas, verified and resumable.

Where things are:

- ``tasks``: the six tasks (math, reasoning, instruction, knowledge, npc, tool) and their
  structured output models.
- ``prompting``: the messages of the three modes and the worked examples.
- ``verify``: empty/refusal checks, the math 2-of-3 check, OpenAI tool validation.
- ``synthesizer``: concurrent generation, in-order settling, MinHash dedup of outputs.
- ``records``: output rows with provenance, the resume journal, JSONL/Parquet writers.
- ``job``: one ``personahub synthesize`` run, from options to file.
- ``diversity``: distinct-n, embedding similarity and duplicate rates of an output file.
- ``world``: game worlds for NPCs (shared with the sandbox's NPC-world mode).

The names below load on first use (PEP 562): ``personahub synthesize --help`` reads the task
list from ``tasks`` without paying for the job's OpenAI types and MinHash.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from personahub.synthesis.job import SynthesisJob, prepare, run_job
    from personahub.synthesis.records import SynthesisError, SynthesisRow, read_rows
    from personahub.synthesis.synthesizer import SynthesisReport
    from personahub.synthesis.tasks import MODES, TASKS, NPCProfile, task
    from personahub.worlds import World, WorldError, load_world

# Each public name and the module that defines it.
_HOMES = {
    "MODES": "personahub.synthesis.tasks",
    "TASKS": "personahub.synthesis.tasks",
    "NPCProfile": "personahub.synthesis.tasks",
    "SynthesisError": "personahub.synthesis.records",
    "SynthesisJob": "personahub.synthesis.job",
    "SynthesisReport": "personahub.synthesis.synthesizer",
    "SynthesisRow": "personahub.synthesis.records",
    "World": "personahub.worlds",
    "WorldError": "personahub.worlds",
    "load_world": "personahub.worlds",
    "prepare": "personahub.synthesis.job",
    "read_rows": "personahub.synthesis.records",
    "run_job": "personahub.synthesis.job",
    "task": "personahub.synthesis.tasks",
}

__all__ = [
    "MODES",
    "TASKS",
    "NPCProfile",
    "SynthesisError",
    "SynthesisJob",
    "SynthesisReport",
    "SynthesisRow",
    "World",
    "WorldError",
    "load_world",
    "prepare",
    "read_rows",
    "run_job",
    "task",
]


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
