"""Where runs live: run ids, run folders, and finding the run database a user names.

A run lives in ``runs/<run-id>/`` (``run.db``, ``report.html``), or in a database given by URL
(``--database``), its report then in ``<out>/<run-id>``.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from pathlib import Path

RUN_DB = "run.db"


class RunError(RuntimeError):
    """A run that cannot start or resume; one line."""


def new_run_id(name: str) -> str:
    """A new run's id: the scenario name, the local start time and a random suffix."""
    return f"{name}-{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def check_out(out: Path) -> None:
    """Refuse an ``--out`` that is a file, before any run work starts."""
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out}: is a file; expected the folder that holds run folders")


def locate_run(ref: str | Path, out: Path = Path("runs")) -> str:
    """The run database for a run folder, a ``run.db`` path, a run id under ``out``, or a
    database URL (``--database`` runs; the latest run in it)."""
    if "://" in str(ref):
        return str(ref)
    for candidate in (Path(ref), out / str(ref)):
        if candidate.is_file():
            return str(candidate)
        if (candidate / RUN_DB).is_file():
            return str(candidate / RUN_DB)
    raise RunError(f"no run found at {ref} (looked for {Path(ref) / RUN_DB} and {out / str(ref)})")


def run_folder(database: str | Path, run_id: str, out: Path = Path("runs")) -> Path:
    """Where a run's report goes: beside its ``run.db``, or ``out/<run-id>`` for a URL."""
    return out / run_id if "://" in str(database) else Path(database).parent
