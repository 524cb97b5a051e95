"""``sandbox export``: a run's transcripts as fine-tuning data."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from personahub.cli.common import console
from sandbox.cli.common import fail_input, input_errors


def register(app: typer.Typer) -> None:
    """Add ``export`` to the ``sandbox`` app."""
    app.command()(export)


class ExportFormat(StrEnum):
    openai = "openai"
    sharegpt = "sharegpt"
    parquet = "parquet"


class ExportRole(StrEnum):
    agent = "agent"
    npc = "npc"
    interview = "interview"
    all = "all"


def export(
    run_ref: Annotated[
        str, typer.Argument(metavar="RUN", help="Run folder, run.db, run id or database URL.")
    ],
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="openai (chat JSONL), sharegpt (JSON array) or parquet (messages + metadata).",
        ),
    ],
    out_file: Annotated[
        Path,
        typer.Option("--out", help="Output file; with --split, FILE.train.EXT and FILE.val.EXT."),
    ],
    role: Annotated[
        ExportRole,
        typer.Option(
            "--role",
            help="agent (forecast replies), npc (conversation sides), interview (interviews "
            "and survey answers) or all.",
        ),
    ] = ExportRole.all,
    min_turns: Annotated[
        int, typer.Option("--min-turns", min=0, help="Fewest non-system messages per sample.")
    ] = 2,
    dedup: Annotated[
        bool, typer.Option("--dedup/--no-dedup", help="Drop near-duplicates (MinHash 0.9).")
    ] = True,
    split: Annotated[
        float | None,
        typer.Option("--split", help="Training fraction of a train/validation split, e.g. 0.9."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split.")] = 0,
    runs: Annotated[
        Path, typer.Option("--runs", help="Folder holding run folders (for a run id).")
    ] = Path("runs"),
) -> None:
    """Turn a run's agent replies and NPC conversations into fine-tuning data."""
    # Here, not at the top: MinHash and Parquet libraries take seconds to import.
    from sandbox.export import ExportError, export_run, report_table
    from sandbox.run_folders import locate_run

    try:
        path = locate_run(run_ref, runs)
        result = export_run(
            path,
            out_file,
            fmt.value,
            role=role.value,
            min_turns=min_turns,
            dedup=dedup,
            split=split,
            seed=seed,
        )
    except input_errors(ExportError) as exc:
        fail_input(exc)
    console.print(report_table(result))
