"""The run report: one self-contained HTML page per run, and a short terminal summary.

:func:`write_report` turns a run database into ``<run folder>/report.html``, and
:func:`print_summary` prints its key figures. What a page and a summary show is the run's
mode's (:data:`sandbox.modes.MODES`: forecast mode's in :mod:`sandbox.forecast.report`, NPC
worlds' in :mod:`sandbox.npc.report`); this module opens the database, picks the mode from
the stored scenario, and writes the page. The page loads nothing from anywhere: no external
CSS, scripts, fonts or images. Everything taken from the database is escaped by the template
(Jinja2 autoescape). Partial runs (running, interrupted, failed) and runs in which every
interaction failed are reported as they stand.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import jinja2
from rich.console import Console

from sandbox.modes import mode_of_run
from sandbox.run_folders import RUN_DB
from sandbox.rundb import RunDatabase

REPORT_NAME = "report.html"


def _open(db_path_or_url: str | Path) -> tuple[RunDatabase, Path | None]:
    """Open a run database; returns it with the folder of its SQLite file (None otherwise)."""
    text = str(db_path_or_url)
    if "://" in text:
        local = text.removeprefix("sqlite:///") if text.startswith("sqlite:///") else ""
        return RunDatabase(text, must_exist=True), Path(local).parent if local else None
    path = Path(text)
    if path.is_dir():
        path = path / RUN_DB
    if not path.is_file():  # RunDatabase would quietly create an empty database here
        raise FileNotFoundError(f"no run database at {path}")
    return RunDatabase(path, must_exist=True), path.parent


def _no_run(where: str | Path, run_id: str | None) -> str:
    return f"no run {run_id!r} in {where}" if run_id else f"no run in {where}"


@functools.cache
def environment() -> jinja2.Environment:
    """The Jinja2 environment of every mode's report template (``sandbox/templates``)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("sandbox", "templates"),
        autoescape=True,  # everything from the database is untrusted text
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"
    env.filters["num"] = lambda v, d=2: "n/a" if v is None else f"{v:,.{d}f}"
    env.filters["count"] = lambda v: "n/a" if v is None else f"{v:,.0f}"
    return env


def write_report(
    db_path_or_url: str | Path, run_id: str | None = None, out_dir: str | Path | None = None
) -> Path:
    """Write a run's ``report.html`` and return its path.

    Args:
        db_path_or_url: The run database: a ``run.db`` path, a run folder or a SQLAlchemy URL.
        run_id: The run; the latest run in the database when None.
        out_dir: Folder to write into; by default the folder of the SQLite file, or
            ``runs/<run-id>`` for other databases.

    Raises:
        FileNotFoundError: No database at that path.
        ValueError: The database holds no such run.
    """
    db, folder = _open(db_path_or_url)
    try:
        run = db.run(run_id)
        if run is None:
            raise ValueError(_no_run(db_path_or_url, run_id))
        html = mode_of_run(run).render_report(environment(), db, run)
    finally:
        db.close()
    target = Path(out_dir) if out_dir is not None else folder or Path("runs") / run.id
    target.mkdir(parents=True, exist_ok=True)
    path = target / REPORT_NAME
    # Write then rename, so a browser never sees half a page.
    scratch = path.with_suffix(f".tmp{os.getpid()}")
    # NUL is not text: databases written before NUL was dropped on writing may still hold one.
    scratch.write_text(html.replace("\x00", ""), encoding="utf-8")
    scratch.replace(path)
    return path


def print_summary(
    db_path_or_url: str | Path,
    run_id: str | None = None,
    console: Console | None = None,
    report_path: Path | None = None,
) -> None:
    """Print the run's key figures (its mode's summary) and the report path if written."""
    console = console or Console()
    db, folder = _open(db_path_or_url)
    try:
        run = db.run(run_id)
        if run is None:
            console.print(f"[red]{_no_run(db_path_or_url, run_id)}[/]", highlight=False)
            return
        mode_of_run(run).print_summary(db, run, console)
    finally:
        db.close()
    report = report_path or (folder or Path("runs") / run.id) / REPORT_NAME
    if report.is_file():
        console.print(f"report: {report}", highlight=False, soft_wrap=True)
