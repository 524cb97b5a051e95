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
def user_errors() -> Iterator[None]:
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


def store_progress() -> Progress:
    """The progress display of the store commands (spinner, bar, count, elapsed time)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f} rows"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def advance_by(progress: Progress, description: str, total: int | None) -> Callable[[int], None]:
    """A new task on ``progress``, as a callback advancing it by n items."""
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

    with user_errors():
        target = PersonaStore(store)
        with store_progress() as progress:
            report = import_file(
                target,
                path,
                fmt=fmt,
                text_field=text_field,
                edges_path=edges,
                progress=advance_by(progress, f"importing {path.name}", None),
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

    with user_errors():
        flt = persona_filter(
            contains, regex, origin, min_hop, max_hop, similar_to, min_similarity, top_k, attr
        )
        if fmt not in ("auto", "jsonl", "parquet"):
            fail(f"unknown export format {fmt!r} (use auto, jsonl or parquet)")
        source = PersonaStore(store)
        with store_progress() as progress:
            written = export_file(
                source,
                path,
                fmt=fmt,  # type: ignore[arg-type]
                filter=None if flt.is_empty else flt,
                edges_path=edges,
                progress=advance_by(progress, f"exporting to {path.name}", None),
            )
    console.print(f"wrote {written:,} personas to {path}")


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

    with user_errors():
        target = PersonaStore(store)
        vectors = StoredVectors(target)
        missing = vectors.missing()
        with store_progress() as progress:
            done = vectors.fill(batch, advance_by(progress, "embedding personas", missing))
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

    with user_errors():
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

    with user_errors():
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
            with store_progress() as progress:
                # Only the first search embeds the store (personas without a vector).
                task = advance_by(progress, "embedding personas (once)", None)
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
    from personahub.cli.dedup import dedup_command

    app.command("import")(import_command)
    app.command("export")(export_command)
    app.command("dedup")(dedup_command)  # its own module: the dedup options are many
    app.command("embed")(embed_command)
    app.command("stats")(stats_command)
    app.command("sample")(sample_command)
