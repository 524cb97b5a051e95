"""``personahub dedup``: remove near-duplicate personas from a store (MinHash, then
embeddings, optionally the two-stage embedding path), registered by
:func:`personahub.cli.store.register` with the other store commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from personahub.cli.common import console, fail
from personahub.cli.store import StoreOpt, advance_by, store_progress, user_errors
from personahub.distributed.options import EngineOpt, RayAddressOpt, RayWorkersOpt


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

    with user_errors():
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
            with store_progress() as progress:
                report = dedup_personas(
                    target,
                    stages=chosen,
                    minhash_threshold=minhash_threshold,
                    embedding_threshold=embedding_threshold,
                    dry_run=dry_run,
                    progress=advance_by(progress, "deduplicating", total),
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
    if report.vectors_read or report.vectors_computed or report.confident:
        # Shows the persisted vectors at work: a second dedup computes none.
        line = (f"embedding vectors: {report.vectors_computed:,} computed and stored, "
                f"{report.vectors_read:,} read from the store")  # fmt: skip
        if report.confident:
            line += f"; {report.confident:,} dropped in the confident band without one"
        console.print(line)
    if not dry_run:
        console.print(f"deleted {report.deleted:,} personas")
    if removed is not None:
        what = "would be removed" if dry_run else "removed"
        console.print(f"{len(report.removed):,} personas {what}: listed in {removed}")
