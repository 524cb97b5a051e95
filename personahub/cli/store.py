"""Persona store commands: ``personahub import``, ``export``, ``dedup``, ``embed``, ``stats``,
``sample``.

The CLI root registers them with :func:`register`. Bad input ends with one red
``error: ...`` line and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from personahub.cli.common import console, fail
from personahub.distributed.options import EngineOpt, RayAddressOpt, RayWorkersOpt

if TYPE_CHECKING:
    from personahub.store import Persona, PersonaFilter, PersonaStore

# The store (SQLAlchemy, SQLModel, numpy) is imported inside the commands, so that
# `personahub --help` and the other command groups start without it.

StoreOpt = Annotated[
    str, typer.Option("--store", help="Persona store: a SQLite path or an SQLAlchemy URL.")
]
ContainsOpt = Annotated[
    list[str] | None,
    typer.Option("--contains", help="Keep personas containing any of these words (repeatable)."),
]
RegexOpt = Annotated[str | None, typer.Option("--regex", help="Keep personas matching this regex.")]
OriginOpt = Annotated[
    list[str] | None,
    typer.Option("--origin", help="text_to_persona, persona_to_persona or imported (repeatable)."),
]
MinHopOpt = Annotated[int | None, typer.Option("--min-hop", help="Minimum hop.")]
MaxHopOpt = Annotated[int | None, typer.Option("--max-hop", help="Maximum hop.")]
SimilarOpt = Annotated[
    str | None, typer.Option("--similar-to", help="Keep personas similar to this text.")
]
MinSimOpt = Annotated[
    float, typer.Option("--min-similarity", help="Cosine threshold for --similar-to.")
]
TopKOpt = Annotated[
    int | None, typer.Option("--top-k", help="With --similar-to: the k most similar.")
]
SAMPLE_TOP_K_HELP = "With --similar-to: the k most similar (default: -n), sampled down to -n."
AttrOpt = Annotated[
    list[str] | None,
    typer.Option("--attr", help="Attribute filter KEY=VALUE (repeat a key for alternatives)."),
]


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn the errors a user can cause into one red line and exit code 2."""
    from personahub.rows import SourceError
    from personahub.store import StoreError

    try:
        yield
    except typer.Exit:
        # click's Exit is a RuntimeError: let fail() calls inside the block through.
        raise
    except (StoreError, SourceError) as exc:
        fail(str(exc))
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        fail(f"{where}: {error['msg']}" if where else error["msg"])
    except RuntimeError as exc:  # e.g. the embedding model package is missing
        fail(str(exc))


def persona_filter(
    contains: list[str] | None = None,
    regex: str | None = None,
    origin: list[str] | None = None,
    min_hop: int | None = None,
    max_hop: int | None = None,
    similar_to: str | None = None,
    min_similarity: float = 0.5,
    top_k: int | None = None,
    attr: list[str] | None = None,
    sample: int | None = None,
    seed: int = 0,
) -> PersonaFilter:
    from personahub.store import PersonaFilter

    attributes: dict[str, list[str]] = {}
    for item in attr or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"--attr wants KEY=VALUE, got {item!r}")
        attributes.setdefault(key.strip(), []).append(value.strip())
    return PersonaFilter(
        contains_any=contains or [],
        regex=regex,
        origin=origin or [],
        min_hop=min_hop,
        max_hop=max_hop,
        similar_to=similar_to,
        min_similarity=min_similarity,
        top_k=top_k,
        attributes=dict(attributes.items()),
        sample=sample,
        seed=seed,
    )


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f} rows"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _advance(progress: Progress, description: str, total: int | None) -> Callable[[int], None]:
    task = progress.add_task(description, total=total)
    return lambda n: progress.advance(task, n)


def import_command(
    path: Annotated[
        Path, typer.Argument(help="JSONL (Persona Hub release or plain), CSV, Parquet.")
    ],
    store: StoreOpt = "personas.db",
    fmt: Annotated[str, typer.Option("--format", help="auto, jsonl, csv or parquet.")] = "auto",
    text_field: Annotated[
        str | None, typer.Option("--text-field", help="Field holding the persona text.")
    ] = None,
    edges: Annotated[
        Path | None, typer.Option("--edges", help="JSONL edges: src, dst, relation, strength.")
    ] = None,
) -> None:
    """Import personas (and edges) from a file into the store."""
    from personahub.store import PersonaStore, import_file

    with _user_errors():
        target = PersonaStore(store)
        with _progress() as progress:
            report = import_file(
                target,
                path,
                fmt=fmt,
                text_field=text_field,
                edges_path=edges,
                progress=_advance(progress, f"importing {path.name}", None),
            )
    table = Table(title=f"import {path.name} -> {target.url}")
    for column in ("read", "added", "duplicates", "malformed"):
        table.add_column(column, justify="right")
    table.add_row(
        *(f"{v:,}" for v in (report.read, report.added, report.duplicates, report.malformed))
    )
    console.print(table)
    if edges is not None:
        console.print(
            f"edges: {report.edges_read:,} read, {report.edges_added:,} added, "
            f"{report.edges_malformed:,} malformed"
        )
    examples = report.malformed_examples + report.edges_malformed_examples
    if examples:
        bad = Table(title="malformed rows (first ones)")
        bad.add_column("line", justify="right")
        bad.add_column("reason")
        for line, reason in examples:
            bad.add_row(str(line), reason)
        console.print(bad)


def export_command(
    path: Annotated[Path, typer.Argument(help="Output .jsonl or .parquet file.")],
    store: StoreOpt = "personas.db",
    fmt: Annotated[str, typer.Option("--format", help="auto, jsonl or parquet.")] = "auto",
    edges: Annotated[Path | None, typer.Option("--edges", help="Also write edges here.")] = None,
    contains: ContainsOpt = None,
    regex: RegexOpt = None,
    origin: OriginOpt = None,
    min_hop: MinHopOpt = None,
    max_hop: MaxHopOpt = None,
    similar_to: SimilarOpt = None,
    min_similarity: MinSimOpt = 0.5,
    top_k: TopKOpt = None,
    attr: AttrOpt = None,
) -> None:
    """Export personas (optionally a filtered slice) to JSONL or Parquet."""
    from personahub.store import PersonaStore, export_file

    with _user_errors():
        flt = persona_filter(
            contains, regex, origin, min_hop, max_hop, similar_to, min_similarity, top_k, attr
        )
        if fmt not in ("auto", "jsonl", "parquet"):
            fail(f"unknown export format {fmt!r} (use auto, jsonl or parquet)")
        source = PersonaStore(store)
        with _progress() as progress:
            written = export_file(
                source,
                path,
                fmt=fmt,  # type: ignore[arg-type]
                filter=None if flt.is_empty else flt,
                edges_path=edges,
                progress=_advance(progress, f"exporting to {path.name}", None),
            )
    console.print(f"wrote {written:,} personas to {path}")


def _confident_band(value: str | None) -> float | None:
    """The ``--confident-band`` value: None (off, the default), the calibrated cosine for
    ``calibrated``, or a cosine."""
    from personahub.dedup.two_stage import CONFIDENT_THRESHOLD

    word = (value or "off").strip().lower()
    if word == "off":
        return None
    if word == "calibrated":
        return CONFIDENT_THRESHOLD
    try:
        band = float(word)
    except ValueError:
        band = float("nan")
    if not 0.0 < band <= 1.0:
        fail(f"--confident-band must be a cosine in (0, 1], 'calibrated' or 'off', not {value!r}")
    return band


def dedup_command(
    store: StoreOpt = "personas.db",
    stages: Annotated[
        str, typer.Option("--stages", help="Comma-separated: minhash, embedding.")
    ] = "minhash,embedding",
    minhash_threshold: Annotated[
        float, typer.Option("--minhash-threshold", help="Jaccard threshold.")
    ] = 0.9,
    embedding_threshold: Annotated[
        float, typer.Option("--embedding-threshold", help="Cosine threshold.")
    ] = 0.9,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report, delete nothing.")] = False,
    two_stage: Annotated[
        bool,
        typer.Option(
            "--two-stage",
            help="Embedding stage: static-model candidates re-scored with MiniLM "
            "(embeds only personas with a candidate).",
        ),
    ] = False,
    confident_band: Annotated[
        str | None,
        typer.Option(
            "--confident-band",
            help="With --two-stage: static cosine at or above which a candidate pair counts "
            "as a near-duplicate without a MiniLM re-score: faster, and no longer exactly a "
            "full pass's decisions. 'calibrated' is 0.985 (decisions agreed >= 99.75% with a "
            "full pass on English-heavy personas; see docs/embeddings.md). Default 'off': "
            "every candidate pair is re-scored.",
            metavar="COSINE|calibrated|off",
        ),
    ] = None,
    removed: Annotated[
        Path | None,
        typer.Option(
            "--removed",
            help="Write what was removed here (JSONL: id, text, the kept duplicate it "
            "matched, stage, similarity); with --dry-run, what would be.",
            dir_okay=False,
        ),
    ] = None,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    ray_workers: RayWorkersOpt = 2,
) -> None:
    """Remove near-duplicate personas from the store (the lowest id of each group stays).

    With --engine ray, MinHash signatures and LSH banding run on Ray Data and the embedding
    stage per shard with a merge; the MinHash decisions equal the local engine's.
    """
    from personahub.dedup import STAGES, dedup_personas, write_removed
    from personahub.distributed.engine import EngineError, check_engine

    band = _confident_band(confident_band)
    chosen = [s.strip() for s in stages.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in STAGES]
    if unknown or not chosen:
        fail(f"unknown stage {(unknown or [''])[0]!r}; choose from {', '.join(STAGES)}")
    try:
        engine = check_engine(engine, ray_address, ray_workers)
    except EngineError as exc:
        fail(str(exc))
    if removed is not None and engine == "ray":
        fail("--removed works with --engine local only")
    from personahub.store import PersonaStore

    with _user_errors():
        target = PersonaStore(store)
        total = target.count()
        if engine == "ray":
            from personahub.distributed.engine import ray_session
            from personahub.distributed.ray_dedup import dedup_store_ray

            try:
                with ray_session(ray_address, num_cpus=None if ray_address else ray_workers):
                    report = dedup_store_ray(
                        target,
                        chosen,
                        minhash_threshold,
                        embedding_threshold,
                        dry_run=dry_run,
                        workers=ray_workers,
                    )
            except EngineError as exc:
                fail(str(exc))
        else:
            with _progress() as progress:
                report = dedup_personas(
                    target,
                    stages=chosen,
                    minhash_threshold=minhash_threshold,
                    embedding_threshold=embedding_threshold,
                    dry_run=dry_run,
                    progress=_advance(progress, "deduplicating", total),
                    two_stage=two_stage,
                    list_removed=removed is not None,
                    confident_threshold=band,
                )
        if removed is not None:
            try:
                write_removed(removed, report.removed)
            except OSError as exc:
                fail(f"cannot write {removed}: {exc.strerror}")
    table = Table(title="dedup" + (" (dry run)" if dry_run else ""))
    table.add_column("stage")
    table.add_column("dropped", justify="right")
    for stage, dropped in report.dropped.items():
        table.add_row(stage, f"{dropped:,}")
    table.add_row("[bold]kept[/]", f"{report.kept:,} of {report.total:,}")
    console.print(table)
    if not dry_run:
        console.print(f"deleted {report.deleted:,} personas")
    if removed is not None:
        what = "would be removed" if dry_run else "removed"
        console.print(f"{len(report.removed):,} personas {what}: listed in {removed}")


def embed_command(
    store: StoreOpt = "personas.db",
    batch: Annotated[
        int, typer.Option("--batch", help="Personas encoded and stored per transaction.", min=1)
    ] = 1024,
    prune: Annotated[
        bool, typer.Option("--prune", help="Also delete the vectors of other embedders.")
    ] = False,
) -> None:
    """Compute and store the embedding of every persona that has none (resumable).

    Vectors are reused by dedup, build, sample/export --similar-to and homophily graphs;
    an interrupted run keeps what it stored and continues where it stopped.
    """
    from personahub.store import PersonaStore, StoredVectors

    with _user_errors():
        target = PersonaStore(store)
        vectors = StoredVectors(target)
        missing = vectors.missing()
        with _progress() as progress:
            done = vectors.fill(batch, _advance(progress, "embedding personas", missing))
        pruned = vectors.delete_other_embedders() if prune else 0
    console.print(
        f"embedded {done:,} personas ({vectors.count():,} stored for {vectors.embedder_id})"
    )
    if prune:
        console.print(f"deleted {pruned:,} vectors of other embedders")


def _print_coverage(target: PersonaStore, stats: dict) -> None:
    from personahub.store import StoredVectors

    by_embedder: dict[str, int] = stats["vectors_by_embedder"]
    current = StoredVectors(target).embedder_id
    have = by_embedder.get(current, 0)
    share = have / stats["personas"] if stats["personas"] else 1.0
    console.print(
        f"embeddings ({current}): {have:,} of {stats['personas']:,} personas ({share:.0%})"
    )
    others = {k: v for k, v in by_embedder.items() if k != current}
    if others:
        listed = ", ".join(f"{k}: {v:,}" for k, v in others.items())
        console.print(f"vectors of other embedders (unused; embed --prune drops them): {listed}")


def stats_command(store: StoreOpt = "personas.db") -> None:
    """Counts of personas by origin, hop and angle, of edges by relation, and embedding
    coverage."""
    from personahub.store import PersonaStore

    with _user_errors():
        target = PersonaStore(store)
        stats = target.stats()
        console.print(
            f"[bold]{stats['personas']:,}[/] personas, [bold]{stats['edges']:,}[/] edges, "
            f"{stats['source_texts']:,} source texts"
        )
        _print_coverage(target, stats)
    for key, title in (
        ("by_origin", "origin"),
        ("by_hop", "hop"),
        ("by_angle", "angle"),
        ("by_granularity", "granularity"),
        ("edges_by_relation", "edge relation"),
    ):
        if not stats[key]:
            continue
        table = Table(title=title)
        table.add_column(title)
        table.add_column("count", justify="right")
        for value, count in stats[key].items():
            table.add_row(value, f"{count:,}")
        console.print(table)


def sample_command(
    store: StoreOpt = "personas.db",
    n: Annotated[int, typer.Option("-n", "--n", help="How many personas.", min=1)] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Sample seed.")] = 0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSONL instead of a table.")
    ] = False,
    contains: ContainsOpt = None,
    regex: RegexOpt = None,
    origin: OriginOpt = None,
    min_hop: MinHopOpt = None,
    max_hop: MaxHopOpt = None,
    similar_to: SimilarOpt = None,
    min_similarity: MinSimOpt = 0.5,
    top_k: Annotated[int | None, typer.Option("--top-k", help=SAMPLE_TOP_K_HELP)] = None,
    attr: AttrOpt = None,
) -> None:
    """Print a seeded random sample of (filtered) personas; with --similar-to, the most
    similar ones with their cosine similarity, most similar first."""
    if similar_to is not None and top_k is None:
        top_k = n
    from personahub.store import PersonaStore, similar_personas

    with _user_errors():
        flt = persona_filter(
            contains,
            regex,
            origin,
            min_hop,
            max_hop,
            similar_to,
            min_similarity,
            top_k,
            attr,
            sample=n,
            seed=seed,
        )
        target = PersonaStore(store)
        scored: list[tuple[Persona, float | None]]
        if flt.similar_to is not None:
            with _progress() as progress:
                # Only the first search embeds the store (personas without a vector).
                task = _advance(progress, "embedding personas (once)", None)
                scored = list(similar_personas(target, flt, progress=task))
        else:
            scored = [(row, None) for row in target.personas(flt)]
    if as_json:
        for row, score in scored:
            record: dict[str, Any] = {
                "id": row.id,
                "persona": row.text,
                "origin": row.origin,
                "hop": row.hop,
                "attributes": row.attributes or {},
            }
            if score is not None:
                record["similarity"] = round(score, 4)
            typer.echo(json.dumps(record, ensure_ascii=False))
        return
    table = Table(title=f"{len(scored)} personas (seed {seed})")
    table.add_column("id", justify="right")
    if flt.similar_to is not None:
        table.add_column("similarity", justify="right")
    table.add_column("origin")
    table.add_column("hop", justify="right")
    table.add_column("persona")
    for row, score in scored:
        similarity = [] if score is None else [f"{score:.3f}"]
        table.add_row(str(row.id), *similarity, row.origin, str(row.hop), row.text)
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the store commands to the ``personahub`` app."""
    app.command("import")(import_command)
    app.command("export")(export_command)
    app.command("dedup")(dedup_command)
    app.command("embed")(embed_command)
    app.command("stats")(stats_command)
    app.command("sample")(sample_command)
