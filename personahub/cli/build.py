"""``personahub build``: texts in, personas and their relationship edges out.

The CLI root registers the command with :func:`register`. Bad input (a missing file, an
unknown text field, an unreachable store, a bad option) ends with one red ``error: ...``
line and exit code 2 before any model call. LLM failures are counted in the summary and
never stop the build; a rerun retries them.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from personahub.cli import llm_options as opt
from personahub.cli.common import console, fail, note_ray_budget, open_client
from personahub.distributed.options import EngineOpt, RayAddressOpt, RayWorkersOpt

if TYPE_CHECKING:
    # The pipeline brings MinHash (scipy), the store (SQLAlchemy) and the gateway: loaded
    # when the command runs, so `--help` stays quick.
    from rich.progress import Progress

    from personahub.build.options import BuildOptions
    from personahub.build.pipeline import PersonaBuilder
    from personahub.build.report import BuildReport
    from personahub.build.sources import SourceRecord
    from personahub.llm import LLMClient
    from personahub.llm.gateway import Gateway
    from personahub.store import PersonaStore

_MAX_WARNINGS = 5


def _parse_angles(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(a.strip().lower() for a in text.split(",") if a.strip()))


@opt.llm_flags()
def build_command(
    source: Annotated[
        str,
        typer.Argument(
            metavar="INPUT",
            help="JSONL, CSV or Parquet file, a folder of .txt/.md files, or - for stdin.",
        ),
    ],
    text_field: Annotated[
        str | None,
        typer.Option("--text-field", help="Field holding the text (default: text, content...)."),
    ] = None,
    store: Annotated[
        str, typer.Option("--store", help="Persona store: a SQLite path or an SQLAlchemy URL.")
    ] = "personas.db",
    angles: Annotated[
        str, typer.Option("--angles", help="Comma-separated: read, write, like, dislike.")
    ] = "read,write",
    granularity: Annotated[
        str, typer.Option("--granularity", help="coarse (short, general) or fine (specific).")
    ] = "coarse",
    hops: Annotated[
        int, typer.Option("--hops", min=0, help="Persona-to-Persona hops (the paper uses 6).")
    ] = 2,
    per_hop: Annotated[
        int, typer.Option("--per-hop", min=1, help="Related personas per persona and hop.")
    ] = 2,
    limit: Annotated[
        int | None, typer.Option("--limit", min=0, help="Read at most this many texts.")
    ] = None,
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", min=1, help="Texts or personas per batch and commit.")
    ] = 64,
    min_relevance: Annotated[
        float | None,
        typer.Option(
            "--min-relevance",
            help="Drop text-to-persona personas whose MiniLM cosine to their text is below "
            "this (each persona's relevance is stored as an attribute either way).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Mixed into every sampling seed.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
    llm: opt.LLMFlags = opt.NO_FLAGS,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    ray_workers: RayWorkersOpt = 2,
) -> None:
    """Build personas from texts: Text-to-Persona, quality filters, MinHash and embedding
    dedup, then Persona-to-Persona hops with relationship edges, into the store.

    Resumable: a rerun skips texts already in the store and retries what failed, and the
    response cache makes repeated requests free.
    """
    from personahub.build.options import BuildOptions
    from personahub.build.pipeline import PersonaBuilder
    from personahub.build.sources import SourceError, read_texts
    from personahub.cli.progress import progress as make_progress
    from personahub.distributed.engine import EngineError, check_engine
    from personahub.llm import ConfigError
    from personahub.llm.backends.local import ModelUnavailableError
    from personahub.store import PersonaStore, StoreError

    options = BuildOptions(
        angles=_parse_angles(angles),
        granularity=granularity.strip().lower(),
        hops=hops,
        per_hop=per_hop,
        limit=limit,
        chunk_size=chunk_size,
        concurrency=llm.concurrency,
        min_relevance=min_relevance,
        seed=seed,
    )
    try:
        options.validate()
        engine = check_engine(engine, ray_address, ray_workers)
    except ValueError as exc:  # EngineError too
        fail(str(exc))
    malformed = [0]

    def on_error(line: int, reason: str) -> None:
        malformed[0] += 1
        if malformed[0] <= _MAX_WARNINGS:
            console.print(
                f"[yellow]warning:[/] {source}:{line}: {reason} (skipped)",
                soft_wrap=True,
                highlight=False,
            )

    try:
        records = read_texts(source, text_field=text_field, on_error=on_error)
        # Stdin checks its text field on the first read: read it before opening anything.
        first = next(records, None)
        records = itertools.chain([first] if first is not None else [], records)
        target = PersonaStore(store)
        client = open_client(llm.config, llm.overrides(), warm_up=engine == "local")
        from personahub.embeddings import get_embedder

        with console.status("loading the embedding model"):
            embedder = get_embedder()
    except (SourceError, StoreError, ConfigError, ModelUnavailableError) as exc:
        fail(str(exc))
    except RuntimeError as exc:  # e.g. the embedding model package is missing
        fail(str(exc))

    progress = None if quiet else make_progress()
    try:
        if engine == "ray":
            report = _run_ray(
                target, client, options, embedder, progress, records, ray_address, ray_workers
            )
        else:
            builder = PersonaBuilder(target, client, options, embedder=embedder, progress=progress)
            report = asyncio.run(_run(builder, client, records, progress))
    except (SourceError, StoreError, EngineError) as exc:  # stdin is checked when first read
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted; run the same command again to continue where it stopped", 130)
    report.texts_malformed = malformed[0]
    if malformed[0] > _MAX_WARNINGS:
        console.print(f"[yellow]warning:[/] {malformed[0] - _MAX_WARNINGS} more rows skipped")
    print_summary(report, target.url, client.model)
    if engine == "ray":
        note_ray_budget(client, ray_workers)


def _run_ray(
    target: PersonaStore,
    client: LLMClient,
    options: BuildOptions,
    embedder: Any,
    progress: Progress | None,
    records: Iterable[SourceRecord],
    address: str | None,
    workers: int,
) -> BuildReport:
    """The same build with every model call made by Ray workers (``--engine ray``)."""
    from personahub.build.pipeline import PersonaBuilder
    from personahub.distributed.engine import ray_session
    from personahub.distributed.ray_client import RayBatchClient

    with ray_session(address, num_cpus=None if address else workers):
        proxy = RayBatchClient(client, workers)
        builder = PersonaBuilder(target, proxy, options, embedder=embedder, progress=progress)
        return asyncio.run(_run(builder, proxy, records, progress))


async def _run(
    builder: PersonaBuilder,
    client: Gateway,
    records: Iterable[SourceRecord],
    progress: Progress | None,
) -> BuildReport:
    try:
        if progress is None:
            return await builder.run(records)
        with progress:
            return await builder.run(records)
    finally:
        await client.aclose()


def _cell(value: int) -> str:
    return f"{value:,}"


def print_summary(report: BuildReport, store_url: str, model: str) -> None:
    """Print the build summary: per-stage counts, input and LLM usage, store totals."""
    from personahub.build.pipeline import DEDUP_STAGES
    from personahub.build.quality import REASONS
    from personahub.llm.meter import endpoint_lines

    stages = list(report.stages.items())
    table = Table(title="personahub build", title_justify="left")
    table.add_column("")
    for name, _ in stages:
        table.add_column(name, justify="right")
    if len(stages) > 1:
        table.add_column("total", justify="right", style="bold")

    def row(
        label: str, values: list[int], show_total: bool = True, style: str | None = None
    ) -> None:
        cells = [_cell(v) for v in values]
        if len(stages) > 1:
            cells.append(_cell(sum(values)) if show_total else "")
        table.add_row(label, *cells, style=style)

    def field(name: str) -> list[int]:
        return [getattr(s, name) for _, s in stages]

    row("input (texts / parents)", field("inputs"), show_total=False)
    row("LLM requests", field("requests"))
    row("LLM failures", field("failed"))
    if report.total("held_back"):
        row("held back (retried next run)", field("held_back"))
    row("personas generated", field("generated"))
    for reason in REASONS:
        values = [s.filtered.get(reason, 0) for _, s in stages]
        if any(values):
            row(f"dropped: {reason}", values)
    for dedup_stage in DEDUP_STAGES:
        row(f"dropped: dedup {dedup_stage}", [s.deduped.get(dedup_stage, 0) for _, s in stages])
    if report.total("known"):
        row("already stored (exact)", field("known"))
    row("stored", field("stored"), style="bold green")
    scores = [s.relevance for _, s in stages]
    if any(scores):
        cells = [f"{sum(r) / len(r):.2f} ({len(r)})" if r else "" for r in scores]
        table.add_row("relevance to text: mean (n)", *cells, *([""] if len(stages) > 1 else []))
    row("edges", field("edges"))
    if report.total("linked"):
        row("  of which to known personas", field("linked"))
    console.print(table)

    llm = report.llm
    usage = Table(title="input and model", title_justify="left", show_header=False)
    usage.add_column("")
    usage.add_column("", justify="right")
    usage.add_row("texts read", _cell(report.texts_read))
    usage.add_row("texts skipped (already stored or repeated)", _cell(report.texts_skipped))
    usage.add_row("rows malformed (skipped)", _cell(report.texts_malformed))
    usage.add_row("texts failed (retried next run)", _cell(report.texts_failed))
    usage.add_row("dedup seeded with stored personas", _cell(report.seeded))
    usage.add_row("model", model)
    usage.add_row("LLM calls", _cell(llm.get("calls", 0)))
    usage.add_row("cache hits", _cell(llm.get("cache_hits", 0)))
    usage.add_row(
        "tokens (prompt + completion)",
        f"{llm.get('prompt_tokens', 0):,} + {llm.get('completion_tokens', 0):,}",
    )
    usage.add_row("retries", _cell(llm.get("retries", 0)))
    errors = ", ".join(f"{k} {v}" for k, v in sorted(report.errors.items())) or "0"
    usage.add_row("failed requests", errors)
    console.print(usage)
    for line in endpoint_lines(llm):
        console.print(f"  {line}", highlight=False, soft_wrap=True)

    if report.first_error:
        console.print(f"[yellow]first failure:[/] {report.first_error}", soft_wrap=True)
    if report.stopped:
        console.print(f"[yellow]stopped early:[/] {report.stopped}", soft_wrap=True)
    if report.stopped or report.texts_failed or report.total("failed"):
        console.print("Run the same command again to retry what failed and continue.")
    stats = report.store
    origins = ", ".join(f"{k} {v:,}" for k, v in stats.get("by_origin", {}).items())
    console.print(
        f"store {store_url}: {stats.get('personas', 0):,} personas ({origins or 'none'}), "
        f"{stats.get('edges', 0):,} edges, {stats.get('source_texts', 0):,} source texts",
        soft_wrap=True,
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add ``build`` to the ``personahub`` command."""
    app.command("build")(build_command)
