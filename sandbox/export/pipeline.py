"""``sandbox export``: a run database in, fine-tuning data out, with a count of every drop.

Order of work: pull samples (:mod:`~sandbox.export.samples`), drop ``failed`` ones, scrub
contact details, build and validate each record (``invalid`` when it breaks its format's
rules), drop ``too_short`` ones, then near-duplicates (``duplicate``), then split and write.
Scrubbing comes before dedup so that two samples differing only in an address count as one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from personahub.db.engine import safe_url
from sandbox.export.clean import first_of_near_duplicates, long_enough, scrub
from sandbox.export.records import FORMATS, Format, Record
from sandbox.export.samples import ROLES, Role, Sample, collect
from sandbox.export.writers import split_groups, split_paths, to_record, write_records
from sandbox.rundb import RunDatabase

DROP_REASONS = ("failed", "invalid", "too_short", "duplicate")


class ExportError(RuntimeError):
    """An export that cannot run (bad option, unreadable or empty run); one line."""


@dataclass(slots=True)
class ExportReport:
    """What an export found, dropped and wrote.

    Attributes:
        run_id: The exported run.
        format: The output format.
        found: Samples in the run for the chosen role.
        kept: Samples written (over all files).
        dropped: Samples dropped, per reason in :data:`DROP_REASONS`.
        scrubbed: Written samples in which an e-mail address or phone number was replaced.
        files: Records written, per output file.
    """

    run_id: str
    format: Format
    found: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    scrubbed: int = 0
    files: dict[Path, int] = field(default_factory=dict)


def _check_options(fmt: str, role: str, min_turns: int, split: float | None) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r} (use {', '.join(FORMATS)})")
    if role not in ROLES:
        raise ExportError(f"unknown role {role!r} (use {', '.join(ROLES)})")
    if min_turns < 0:
        raise ExportError(f"--min-turns must be 0 or more, got {min_turns}")
    if split is not None and not 0 < split < 1:
        raise ExportError(f"--split is the training fraction, between 0 and 1; got {split}")


def _load(database: str | Path, role: Role) -> tuple[str, list[Sample]]:
    """The latest run's id and its samples."""
    name = safe_url(str(database)) if "://" in str(database) else str(database)
    db: RunDatabase | None = None
    try:
        db = RunDatabase(database, must_exist=True)
        run = db.run()
        if run is None:
            raise ExportError(f"{name} holds no run")
        return run.id, collect(db, run.id, role)
    except SQLAlchemyError as exc:
        # Not a database, or one from before a column was added: one line, no traceback.
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise ExportError(f"cannot read run database {name}: {reason}") from None
    finally:
        if db is not None:
            db.close()


def export_run(
    database: str | Path,
    out: Path,
    fmt: Format,
    role: Role = "all",
    min_turns: int = 2,
    dedup: bool = True,
    split: float | None = None,
    seed: int = 0,
) -> ExportReport:
    """Export the latest run of ``database`` as training data.

    Args:
        database: A run database path or SQLAlchemy URL
            (see :func:`sandbox.run_folders.locate_run`).
        out: Output file; with ``split``, ``<stem>.train<suffix>`` and ``<stem>.val<suffix>``.
        fmt: ``openai``, ``sharegpt`` or ``parquet``.
        role: ``agent`` (forecast interactions), ``npc`` (conversation sides), ``interview``
            (interviews and survey answers) or ``all``.
        min_turns: Fewest non-system messages a sample needs.
        dedup: Drop near-duplicate samples (MinHash, Jaccard >= 0.9), keeping the first.
        split: Training fraction of a seeded train/validation split, or None for one file.
        seed: Seed of the split.

    Raises:
        ExportError: A bad option, or a run without samples of ``role``.
        DatabaseError: The database cannot be opened.
    """
    _check_options(fmt, role, min_turns, split)
    if out.is_dir():
        raise ExportError(f"--out {out} is a folder; give the file to write")
    run_id, samples = _load(database, role)
    if not samples:
        raise ExportError(f"run {run_id} has no samples for --role {role}")
    report = ExportReport(run_id=run_id, format=fmt, found=len(samples))

    alive = [s for s in samples if not s.failed]
    report.dropped["failed"] = len(samples) - len(alive)
    records: list[Record] = []
    valid: list[Sample] = []
    for sample in map(scrub, alive):
        try:
            records.append(to_record(sample, fmt))
        except ValidationError:
            report.dropped["invalid"] += 1
            continue
        valid.append(sample)
    pairs = list(zip(valid, records, strict=True))

    flags = long_enough(valid, min_turns)
    report.dropped["too_short"] = flags.count(False)
    pairs = [p for p, keep in zip(pairs, flags, strict=True) if keep]
    if dedup and pairs:
        flags = first_of_near_duplicates([s for s, _ in pairs])
        report.dropped["duplicate"] = flags.count(False)
        pairs = [p for p, keep in zip(pairs, flags, strict=True) if keep]

    report.kept = len(pairs)
    report.scrubbed = sum(s.scrubbed for s, _ in pairs)
    if split is None:
        parts = {out: [r for _, r in pairs]}
    else:
        train = split_groups([s.group for s, _ in pairs], split, seed)
        train_path, val_path = split_paths(out)
        parts = {
            train_path: [r for s, r in pairs if s.group in train],
            val_path: [r for s, r in pairs if s.group not in train],
        }
    for path, part in parts.items():
        try:
            write_records(part, path, fmt)
        except OSError as exc:
            raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None
        report.files[path] = len(part)
    return report


def report_table(report: ExportReport) -> Table:
    """The counts of an export, for the terminal."""
    table = Table(title=f"export of {report.run_id} ({report.format})", show_header=False)
    table.add_column("what", overflow="fold")
    table.add_column("samples", justify="right")
    table.add_row("found", str(report.found))
    for reason in DROP_REASONS:
        table.add_row(f"dropped: {reason}", str(report.dropped[reason]))
    table.add_row("[bold]kept[/]", f"[bold]{report.kept}[/]")
    table.add_row("scrubbed (of kept)", str(report.scrubbed))
    for path, count in report.files.items():
        table.add_row(f"-> {path}", str(count))
    return table
