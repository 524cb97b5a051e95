"""``personahub synthesize`` and ``personahub diversity``.

Bad input (task, mode, examples, world, personas, filter, output suffix, a journal from
other options) ends with one red ``error: ...`` line and exit code 2 before any model call.
Failed requests are counted and retried by the next run of the same command, up to
``--max-attempts`` times per item; dropped and given-up items go to ``OUT.rejects.jsonl``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from personahub.cli import llm_options as opt
from personahub.cli.common import console, fail, note_ray_budget, open_client
from personahub.cli.store import AttrOpt, ContainsOpt, RegexOpt, persona_filter
from personahub.distributed.options import EngineOpt, RayAddressOpt, RayWorkersOpt
from personahub.synthesis.tasks import MODES, TASKS

if TYPE_CHECKING:
    # The job brings the OpenAI types, MinHash (scipy) and the gateway: loaded when a
    # command runs, so `--help` stays quick (the task list above is light).
    from personahub.llm import LLMClient
    from personahub.synthesis.job import Prepared
    from personahub.synthesis.synthesizer import SynthesisReport

TASK_HELP = ", ".join(TASKS)


@opt.llm_flags()
def synthesize_command(
    task: Annotated[str, typer.Option("--task", help=f"What to write: {TASK_HELP}.")],
    personas: Annotated[
        str,
        typer.Option(
            "--personas", help="A persona store (.db or SQLAlchemy URL) or a JSONL/CSV/Parquet."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output file: .jsonl or .parquet.")],
    n: Annotated[
        int | None,
        typer.Option("--n", help="Items to make (default: one per selected persona)."),
    ] = None,
    mode: Annotated[str, typer.Option("--mode", help=" | ".join(MODES))] = "zero-shot",
    examples: Annotated[
        Path | None,
        typer.Option(
            "--examples",
            help='Few-shot examples, JSONL of {"persona", "output"} (default: packaged ones).',
        ),
    ] = None,
    world: Annotated[
        Path | None,
        typer.Option("--world", help="npc task: game world YAML/JSON (default: Saltmere)."),
    ] = None,
    contains: ContainsOpt = None,
    regex: RegexOpt = None,
    attr: AttrOpt = None,
    sample: Annotated[
        int | None, typer.Option("--sample", help="Use a seeded random sample of personas.")
    ] = None,
    text_field: Annotated[
        str | None, typer.Option("--text-field", help="Persona text field of a file.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Sampling and request seed.")] = 0,
    temperature: Annotated[
        float | None, typer.Option("--temperature", min=0, max=2, help="Generation temperature.")
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify/--no-verify", help="math: keep only 2-of-k agreed problems.")
    ] = True,
    solve_k: Annotated[int, typer.Option("--solve-k", min=1, help="math: solving attempts.")] = 3,
    agree: Annotated[int, typer.Option("--agree", min=1, help="math: answers that agree.")] = 2,
    dedup: Annotated[
        bool, typer.Option("--dedup/--no-dedup", help="Drop near-duplicate outputs (MinHash).")
    ] = True,
    max_attempts: Annotated[
        int,
        typer.Option("--max-attempts", min=1, help="Runs that may retry a failing item."),
    ] = 3,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    ray_workers: RayWorkersOpt = 2,
    llm: opt.LLMFlags = opt.NO_FLAGS,
) -> None:
    """Write persona-driven data: math problems, reasoning puzzles, user instructions,
    knowledge articles, game NPCs or tool specs, one per persona (or --n in all).

    Each row carries its persona, task, mode, template version, model, parameters and
    verification. Resumable: a rerun of the same command skips what is done (see
    OUT.journal.jsonl) and retries what failed, up to --max-attempts times; dropped and
    given-up items are written with their content to OUT.rejects.jsonl.
    """
    from personahub.distributed.engine import EngineError, check_engine
    from personahub.llm import ConfigError
    from personahub.llm.backends.local import ModelUnavailableError
    from personahub.synthesis.job import SynthesisJob, prepare
    from personahub.synthesis.records import SynthesisError

    job = SynthesisJob(
        task=task.strip().lower(),
        personas=personas,
        out=out,
        mode=mode.strip().lower(),
        n=n,
        filter=persona_filter(contains, regex, attr=attr, sample=sample, seed=seed),
        text_field=text_field,
        examples=examples,
        world=world,
        seed=seed,
        concurrency=llm.concurrency,
        temperature=temperature,
        verify=verify,
        solve_k=solve_k,
        agree=agree,
        dedup=dedup,
        max_attempts=max_attempts,
    )
    try:
        engine = check_engine(engine, ray_address, ray_workers)
        prepared = prepare(job)
        client = open_client(llm.config, llm.overrides())
    except (EngineError, SynthesisError, ConfigError, ModelUnavailableError) as exc:
        fail(str(exc))
    usage = None
    try:
        if engine == "ray":
            report, usage = _run_ray(client, prepared, quiet, ray_address, ray_workers)
        else:
            report = asyncio.run(_run(client, prepared, quiet))
    except EngineError as exc:  # a Ray cluster that cannot be reached
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted; run the same command again to continue where it stopped", 130)
    _print_summary(report, prepared, client, usage)
    if engine == "ray":
        note_ray_budget(client, ray_workers)


@contextmanager
def _closing(client: LLMClient) -> Iterator[None]:
    # The driver's client only lends its settings to the workers; close its cache after.
    try:
        yield
    finally:
        asyncio.run(client.aclose())


@contextmanager
def _progress(
    prepared: Prepared, quiet: bool, label: str
) -> Iterator[Callable[[int, int], None] | None]:
    """An items and tokens/s bar over what the journal lacks; None when quiet or done."""
    from personahub.cli.progress import progress as make_progress

    todo = len(prepared.journal.pending(prepared.items))
    if quiet or not todo:
        yield None
        return
    with make_progress(tokens=True) as bar:
        task = bar.add_task(label, total=todo, tokens=0)
        tokens = [0]

        def advance(items: int, used: int) -> None:
            tokens[0] += used
            bar.update(task, advance=items, tokens=tokens[0])

        yield advance


def _run_ray(
    client: LLMClient, prepared: Prepared, quiet: bool, address: str | None, workers: int
) -> tuple[SynthesisReport, dict[str, int]]:
    from personahub.distributed.engine import ray_session
    from personahub.distributed.ray_synthesis import run_job_ray

    label = f"synthesize {prepared.spec.name} (ray)"
    with (
        ray_session(address, num_cpus=None if address else workers),
        _closing(client),
        _progress(prepared, quiet, label) as advance,
    ):
        return run_job_ray(client, prepared, workers, on_progress=advance)


async def _run(client: LLMClient, prepared: Prepared, quiet: bool) -> SynthesisReport:
    from personahub.synthesis.job import run_job

    async with client:
        with _progress(prepared, quiet, f"synthesize {prepared.spec.name}") as advance:
            return await run_job(client, prepared, advance)


def _print_summary(
    report: SynthesisReport,
    prepared: Prepared,
    client: LLMClient,
    usage: dict[str, int] | None = None,
) -> None:
    from personahub.llm.meter import endpoint_lines
    from personahub.synthesis.synthesizer import DROP_REASONS

    table = Table(title=f"personahub synthesize --task {prepared.spec.name}", show_header=False)
    table.add_column("")
    table.add_column("", justify="right")
    table.add_row("items planned", f"{report.planned:,}")
    table.add_row("already done (journal)", f"{report.already_settled:,}")
    table.add_row("kept this run", f"{report.kept:,}", style="bold green")
    for reason in DROP_REASONS:
        if report.dropped.get(reason):
            table.add_row(f"dropped: {reason}", f"{report.dropped[reason]:,}")
    failed = sum(report.errors.values())
    if failed:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(report.errors.items()))
        table.add_row("failed (retried next run)", f"{report.retriable:,} ({kinds})")
    limit = prepared.journal.max_attempts
    if report.gave_up:
        table.add_row(f"gave up (failed {limit} runs)", f"{report.gave_up:,}", style="yellow")
    usage = client.usage() if usage is None else usage  # the Ray workers' sum
    table.add_row("model", client.model)
    table.add_row(
        "LLM calls (cache hits)", f"{usage.get('calls', 0):,} ({usage.get('cache_hits', 0):,})"
    )
    table.add_row(
        "tokens (prompt + completion)",
        f"{usage.get('prompt_tokens', 0):,} + {usage.get('completion_tokens', 0):,}",
    )
    table.add_row("rows in output", f"{report.total_kept:,}", style="bold")
    console.print(table)
    for line in endpoint_lines(usage):
        console.print(f"  {line}", highlight=False, soft_wrap=True)
    if report.stopped:
        console.print(f"[yellow]stopped early:[/] {report.stopped}")
    rejects = prepared.journal.rejects
    if report.stopped or report.retriable:
        console.print("Run the same command again to continue.")
    elif report.gave_up:
        console.print(
            f"Nothing left to retry: {report.gave_up:,} item(s) gave up after {limit} "
            f"attempts; see {rejects}",
            highlight=False,
            soft_wrap=True,
        )
    if sum(report.dropped.values()) or report.gave_up_now:
        console.print(
            f"rejected items with their content: {rejects}", highlight=False, soft_wrap=True
        )
    console.print(f"wrote {prepared.job.out}", highlight=False, soft_wrap=True)


def diversity_command(
    path: Annotated[Path, typer.Argument(help="A synthesize output (.jsonl or .parquet).")],
    pairs: Annotated[
        int, typer.Option("--pairs", min=1, help="Random pairs for the similarity mean.")
    ] = 2000,
    embeddings: Annotated[
        bool,
        typer.Option("--embeddings/--no-embeddings", help="Compute embedding similarity."),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Pair sampling seed.")] = 0,
) -> None:
    """How diverse are the outputs, and the personas that wrote them? distinct-1/2, mean
    pairwise embedding similarity (sampled) and the near-duplicate rate."""
    from personahub.synthesis.diversity import measure_file_rows
    from personahub.synthesis.records import SynthesisError, read_rows

    try:
        rows = read_rows(path)
    except SynthesisError as exc:
        fail(str(exc))
    if not rows:
        fail(f"{path} is empty: no rows to measure")
    embed = None
    if embeddings:
        from personahub.embeddings import get_embedder

        try:
            with console.status("loading the embedding model"):
                embedder = get_embedder()
        except RuntimeError as exc:
            fail(str(exc))
        embed = embedder.encode
    metrics = measure_file_rows(rows, embed, max_pairs=pairs, seed=seed)
    if as_json:
        print(json.dumps({k: v.to_json() for k, v in metrics.items()}, indent=2))
        return
    table = Table(title=f"diversity of {path.name}")
    table.add_column("")
    table.add_column("outputs", justify="right")
    table.add_column("personas", justify="right")
    out, who = metrics["outputs"], metrics["personas"]

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    table.add_row("count", f"{out.count:,}", f"{who.count:,}")
    table.add_row("distinct-1", fmt(out.distinct_1), fmt(who.distinct_1))
    table.add_row("distinct-2", fmt(out.distinct_2), fmt(who.distinct_2))
    table.add_row("near-duplicate rate", fmt(out.duplicate_rate), fmt(who.duplicate_rate))
    table.add_row("mean cosine similarity", fmt(out.mean_similarity), fmt(who.mean_similarity))
    table.add_row(
        "similarity p25 / p50 / p75",
        " / ".join(fmt(v) for v in (out.similarity_p25, out.similarity_p50, out.similarity_p75)),
        " / ".join(fmt(v) for v in (who.similarity_p25, who.similarity_p50, who.similarity_p75)),
    )
    table.add_row("pairs sampled", f"{out.pairs:,}", f"{who.pairs:,}")
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``synthesize`` and ``diversity`` to the ``personahub`` command."""
    app.command("synthesize")(synthesize_command)
    app.command("diversity")(diversity_command)
