"""One ``personahub synthesize`` job: personas in, a verified, deduplicated file out.

:func:`prepare` checks everything a user can get wrong (task, mode, examples, world,
persona source and filter, output suffix, a journal from other options) before any model
call; :func:`run_job` then generates, journals and writes the output.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from personahub.llm import LLMClient
from personahub.store import PersonaFilter, StoreError, open_personas, stored_id
from personahub.synthesis.prompting import Example, load_examples, template_version
from personahub.synthesis.records import (
    Journal,
    SynthesisError,
    journal_path,
    output_format,
    rejects_path,
    write_output,
)
from personahub.synthesis.synthesizer import Item, SynthesisReport, Synthesizer, plan_items
from personahub.synthesis.tasks import MODES, TaskSpec, task
from personahub.worlds import World, load_world


@dataclass
class SynthesisJob:
    """The options of one run (see ``personahub synthesize --help``)."""

    task: str
    personas: str
    out: Path
    mode: str = "zero-shot"
    n: int | None = None
    filter: PersonaFilter = field(default_factory=PersonaFilter)
    text_field: str | None = None
    examples: Path | None = None
    world: Path | None = None
    seed: int = 0
    concurrency: int | None = None
    temperature: float | None = None
    verify: bool = True
    solve_k: int = 3
    agree: int = 2
    dedup: bool = True
    max_attempts: int = 3


@dataclass
class TaskSetup:
    """What generating an item needs: a checked job, its task, examples, world and template
    version (without the plan and journal, which stay with the driver)."""

    job: SynthesisJob
    spec: TaskSpec
    examples: list[Example]
    world: World | None
    version: str


@dataclass
class Prepared(TaskSetup):
    """A checked job with its plan and journal."""

    items: list[Item]
    journal: Journal

    def setup(self) -> TaskSetup:
        """The generation part alone (what a worker process needs)."""
        return TaskSetup(self.job, self.spec, self.examples, self.world, self.version)


def _personas(job: SynthesisJob) -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory(prefix="personahub-synth-") as scratch:
        try:
            store = open_personas(job.personas, Path(scratch), text_field=job.text_field)
        except StoreError as exc:
            raise SynthesisError(f"--personas: {exc}") from None
        try:
            rows = store.personas(None if job.filter.is_empty else job.filter)
        finally:
            store.close()
    rows.sort(key=lambda p: stored_id(p.id))
    return [(row.external_id or str(row.id), row.text) for row in rows]


def prepare(job: SynthesisJob) -> Prepared:
    """Check a job and plan it.

    Raises:
        SynthesisError: Anything wrong with the options or inputs (one line).
    """
    try:
        spec = task(job.task)
    except ValueError as exc:
        raise SynthesisError(str(exc)) from None
    if job.mode not in MODES:
        raise SynthesisError(f"unknown mode {job.mode!r}; choose from {', '.join(MODES)}")
    if job.n is not None and job.n < 1:
        raise SynthesisError("--n must be at least 1")
    if job.max_attempts < 1:
        raise SynthesisError("--max-attempts must be at least 1")
    if not 1 <= job.agree <= job.solve_k:
        raise SynthesisError(f"--agree must be between 1 and --solve-k ({job.solve_k})")
    output_format(job.out)
    try:
        examples = load_examples(spec, job.examples) if job.mode != "zero-shot" else []
        world = load_world(job.world) if spec.needs_world else None
    except ValueError as exc:  # ExamplesError, WorldError
        raise SynthesisError(str(exc)) from None
    personas = _personas(job)
    if not personas:
        raise SynthesisError("--personas: the filter selected no personas")
    version = template_version(spec, job.mode, examples)
    header = {
        "task": spec.name,
        "mode": job.mode,
        "template_version": version,
        "personas": job.personas,
        "filter": json.loads(job.filter.model_dump_json()),
        "seed": job.seed,
    }
    journal = Journal(
        journal_path(job.out), header, rejects_path(job.out), max_attempts=job.max_attempts
    )
    return Prepared(job, spec, examples, world, version, plan_items(personas, job.n), journal)


def synthesizer_for(client: LLMClient, setup: TaskSetup) -> Synthesizer:
    """The synthesizer of a checked job, calling the model through ``client``."""
    job = setup.job
    return Synthesizer(
        client,
        setup.spec,
        job.mode,
        setup.examples,
        setup.world,
        setup.version,
        seed=job.seed,
        concurrency=job.concurrency,
        temperature=job.temperature,
        verify_math=job.verify,
        solve_k=job.solve_k,
        agree=job.agree,
        dedup_threshold=0.9 if job.dedup else None,
    )


async def run_job(
    client: LLMClient,
    prepared: Prepared,
    on_progress: Callable[[int, int], None] | None = None,
) -> SynthesisReport:
    """Generate what the journal lacks, then write the output file from the journal."""
    job = prepared.job
    synthesizer = synthesizer_for(client, prepared)
    try:
        report = await synthesizer.run(prepared.items, prepared.journal, on_progress)
    finally:
        # Whatever was settled is written, even when interrupted.
        write_output(kept_rows(prepared), job.out)
        client.flush()
    return report


def kept_rows(prepared: Prepared) -> list[dict]:
    """The journal's kept rows for the planned items, in plan order."""
    entries = prepared.journal.entries
    return [
        entries[item.key]["row"]
        for item in prepared.items
        if item.key in entries and entries[item.key]["status"] == "kept"
    ]
