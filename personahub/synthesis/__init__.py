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
"""

from personahub.synthesis.job import SynthesisJob, prepare, run_job
from personahub.synthesis.records import SynthesisError, SynthesisRow, read_rows
from personahub.synthesis.synthesizer import SynthesisReport
from personahub.synthesis.tasks import MODES, TASKS, NPCProfile, task
from personahub.worlds import World, WorldError, load_world

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
