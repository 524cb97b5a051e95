"""Where ``sandbox serve`` finds runs, and how it reads them: read-only, beside the runs.

The server is a separate process from the runs it shows. It reads through connections that
cannot write (SQLite ``PRAGMA query_only``; PostgreSQL read-only transactions), so a bug in a
page can never damage a run, and SQLite's write-ahead log lets a run commit its steps while
pages read. It never migrates a database either: one at another schema revision is listed
with a note. Only interviews and surveys write, through a separate :class:`RunDatabase`
opened on the first one (:meth:`RunSource.writer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import defer
from sqlmodel import Session, col

from personahub.db import migrations
from personahub.db.engine import DatabaseError, make_engine, safe_url
from sandbox.run_folders import RUN_DB, run_folder
from sandbox.rundb import RUN_SCHEMA, ExperimentRunRow, InteractionRow, RunDatabase, RunRow

EXPERIMENT_REPORT = "experiment.html"
"""The experiment report's file name (``sandbox.experiment.report.REPORT_NAME``, which this
module does not import: it pulls in the plotting stack)."""


def _read_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only = ON")
    cursor.close()


def _read_only_postgres(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    cursor.close()
    dbapi_connection.commit()


def read_only_engine(target: str | Path) -> Engine:
    """An engine on an existing run database whose connections cannot write."""
    engine = make_engine(target, must_exist=True)
    hook = _read_only if engine.dialect.name == "sqlite" else _read_only_postgres
    event.listen(engine, "connect", hook)
    engine.dispose()  # the connection make_engine checked with was opened before the hook
    return engine


class RunReader(RunDatabase):
    """The run database's readers over a read-only engine (no migration, no checkpoint).

    Its :meth:`interactions` leave out the prompts and raw replies, which the live view never
    shows and which are most of a large run's bytes; :meth:`agent_interactions` has them.
    """

    def __init__(self, target: str | Path):  # no super().__init__: it would migrate
        self.target = str(target)
        self.engine = read_only_engine(target)

    def interactions(self, run_id: str) -> list[InteractionRow]:
        heavy = (InteractionRow.messages, InteractionRow.raw_response, InteractionRow.observations)
        with Session(self.engine) as session:
            query = (
                select(InteractionRow)
                .where(col(InteractionRow.run_id) == run_id)
                .options(*(defer(c) for c in heavy))  # type: ignore[arg-type]
                .order_by(
                    col(InteractionRow.step), col(InteractionRow.agent_id), col(InteractionRow.id)
                )
            )
            return list(session.execute(query).scalars())

    def agent_interactions(self, run_id: str, agent_id: int) -> list[InteractionRow]:
        """Every interaction of one agent, prompts and replies included, by step."""
        with Session(self.engine) as session:
            query = (
                select(InteractionRow)
                .where(
                    col(InteractionRow.run_id) == run_id, col(InteractionRow.agent_id) == agent_id
                )
                .order_by(col(InteractionRow.step), col(InteractionRow.id))
            )
            return list(session.execute(query).scalars())

    def all_runs(self) -> list[RunRow]:
        with Session(self.engine) as session:
            query = select(RunRow).order_by(col(RunRow.created).desc())
            return list(session.execute(query).scalars())

    def outdated(self) -> str | None:
        """Why this database cannot be shown (another schema revision), or None."""
        with self.engine.connect() as connection:
            found = migrations.current(connection, RUN_SCHEMA)
        wanted = migrations.head(RUN_SCHEMA)
        if found == wanted:
            return None
        return (
            f"schema revision {found}, this version reads {wanted}: "
            "`sandbox report` on it upgrades it"
        )

    def is_new(self) -> bool:
        """Whether no run has set this database up yet: it has no tables at all."""
        with self.engine.connect() as connection:
            return not inspect(connection).get_table_names()

    def close(self) -> None:
        self.engine.dispose()


@dataclass(frozen=True, slots=True)
class Listed:
    """A run found by the source, or a database that could not be read (``run`` None);
    ``experiment`` is its arm and seed when it is one of an experiment's runs."""

    target: str
    run: RunRow | None
    problem: str | None = None
    experiment: ExperimentRunRow | None = None


class RunSource:
    """The run databases under a runs folder (``runs/*/run.db``), or one database URL.

    Args:
        runs: A folder of run folders: the runs when ``database`` is None; with a database
            URL, where its runs' reports are (``sandbox run --database URL --out runs``
            writes ``runs/<run-id>/report.html``).
        database: A database URL (or path) holding any number of runs.
    """

    def __init__(self, runs: Path | None = None, database: str | None = None):
        if runs is None and database is None:
            raise ValueError("give a runs folder or a database")
        self.runs = runs
        self.database = database
        self._readers: dict[str, RunReader] = {}
        self._writers: dict[str, RunDatabase] = {}
        self._where: dict[str, str] = {}
        self._experiments: dict[str, str] = {}  # experiment id -> its database

    def describe(self) -> str:
        """Where the runs are, for people: the URL without its password, or the full path
        (``runs`` alone does not say which folder the server was started in)."""
        if self.database is not None:
            return safe_url(self.database) if "://" in self.database else self.database
        assert self.runs is not None
        return str(self.runs.resolve())

    def _targets(self) -> list[str]:
        if self.database is not None:
            return [self.database]
        assert self.runs is not None
        return [str(p) for p in sorted(self.runs.glob(f"*/{RUN_DB}"))] if self.runs.is_dir() else []

    def reader(self, target: str) -> RunReader:
        if target not in self._readers:
            self._readers[target] = RunReader(target)
        return self._readers[target]

    def listing(self) -> list[Listed]:
        """Every run, newest first per database, with unreadable databases as problems."""
        found: list[Listed] = []
        for target in self._targets():
            name = safe_url(target) if "://" in target else target
            try:
                reader = self.reader(target)
                problem = reader.outdated()
                if problem and reader.is_new():
                    continue  # a run is setting it up, or serve was opened first: no runs yet
                if problem:
                    found.append(Listed(name, None, problem))
                    continue
                arms = {row.run_id: row for row in reader.experiment_runs()}
                for row in arms.values():
                    self._experiments[row.experiment] = target
                for run in reader.all_runs():
                    self._where[run.id] = target
                    found.append(Listed(target, run, experiment=arms.get(run.id)))
            except (DatabaseError, SQLAlchemyError) as exc:
                reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
                found.append(Listed(name, None, reason))
        return found

    def locate(self, run_id: str) -> tuple[RunReader, RunRow] | None:
        """The reader and current row of run ``run_id``, or None."""
        if run_id not in self._where:
            self.listing()
        target = self._where.get(run_id)
        if target is None:
            return None
        reader = self.reader(target)
        run = reader.run(run_id)
        return (reader, run) if run is not None else None

    def experiment(self, experiment_id: str) -> RunReader | None:
        """The reader of the database holding experiment ``experiment_id``, or None."""
        if experiment_id not in self._experiments:
            self.listing()
        target = self._experiments.get(experiment_id)
        return self.reader(target) if target is not None else None

    def report_path(self, run_id: str) -> Path | None:
        """The run's report.html, if it has been written: beside its SQLite file (in its
        ``<run-id>/`` there for a run of an experiment), or in ``runs/<run-id>/`` for a
        database URL (:func:`sandbox.run_folders.run_folder`)."""
        target = self._where.get(run_id)
        if target is None or ("://" in target and self.runs is None):
            return None  # a database URL, and no runs folder to look in
        # The runs folder only matters for a URL; a SQLite run's report is beside its file,
        # or for a run of an experiment in the experiment folder's <run-id>/.
        folder = run_folder(target, run_id, self.runs or Path())
        for path in (folder / "report.html", folder / run_id / "report.html"):
            if path.is_file():
                return path
        return None

    def experiment_report_path(self, experiment_id: str) -> Path | None:
        """The experiment's experiment.html beside its SQLite file, if it has been written."""
        return self._beside(self._experiments.get(experiment_id), EXPERIMENT_REPORT)

    @staticmethod
    def _beside(target: str | None, name: str) -> Path | None:
        if target is None or "://" in target:
            return None
        path = Path(target).parent / name
        return path if path.is_file() else None

    def writer(self, run_id: str) -> RunDatabase:
        """A writing connection to the run's database, for interviews and surveys only."""
        target = self._where[run_id]
        if target not in self._writers:
            self._writers[target] = RunDatabase(target, must_exist=True)
        return self._writers[target]

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()
        for writer in self._writers.values():
            writer.close()
