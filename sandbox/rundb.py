"""The run database: every run, agent, interaction and message, committed once per step.

One SQLModel schema on any SQLAlchemy URL; by default ``runs/<run-id>/run.db``. A step's
interactions, messages, agent states, metrics and the random state are written in one
transaction, so a killed run resumes from its last committed step with nothing half-written.

The tables and their Alembic schema are in :mod:`sandbox.rundb_tables` (re-exported here):
adding a column or table there needs a revision (docs/migrations.md), which a test enforces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, SQLModel, col

from personahub.db.engine import DatabaseError, database_url, make_engine, safe_url
from personahub.db.migrations import upgrade
from sandbox.rundb_tables import (
    PLAYER_ID,
    RUN_SCHEMA,
    RUN_TABLES,
    AgentRow,
    AgentStateRow,
    DialogueTurnRow,
    EdgeRow,
    ExperimentRunRow,
    InteractionRow,
    InterviewRow,
    MessageRow,
    OutcomeRow,
    RunRow,
    StepMetricRow,
    table_of,
    utc_now,
)

__all__ = [
    "PLAYER_ID",
    "RUN_SCHEMA",
    "RUN_TABLES",
    "AgentRow",
    "AgentStateRow",
    "DialogueTurnRow",
    "EdgeRow",
    "ExperimentRunRow",
    "InteractionRow",
    "InterviewRow",
    "MessageRow",
    "OutcomeRow",
    "RunDatabase",
    "RunRow",
    "StepMetricRow",
]

Row = TypeVar("Row", bound=SQLModel)


class RunDatabase:
    """Reads and writes one run database.

    Args:
        target: A path (SQLite) or SQLAlchemy URL.
        must_exist: Open an existing database only (resume, report, list): a missing SQLite
            file is a DatabaseError instead of a new empty database.
    """

    def __init__(self, target: str | Path, must_exist: bool = False):
        self.target = str(target)
        self.engine = make_engine(target, must_exist=must_exist)
        try:
            upgrade(self.engine, RUN_SCHEMA)
        except SQLAlchemyError as exc:  # e.g. no right to create tables on a shared server
            self.engine.dispose()
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise DatabaseError(
                f"cannot set up run database {safe_url(database_url(target))}: {reason}"
            ) from None

    def create_run(
        self, run: RunRow, agents: list[dict[str, Any]], edges: list[dict[str, Any]]
    ) -> None:
        """Store a new run with its agents and graph, in one transaction."""
        with Session(self.engine) as session:
            session.add(run)
            session.flush()
            if agents:
                session.execute(insert(table_of(AgentRow)), agents)
            if edges:
                session.execute(insert(table_of(EdgeRow)), edges)
            session.commit()

    def commit_step(
        self,
        run_id: str,
        step: int,
        *,
        interactions: list[dict[str, Any]],
        messages: list[dict[str, Any]],
        states: list[dict[str, Any]],
        metrics: dict[str, Any],
        rng_state: list[Any],
        usage: dict[str, Any],
        turns: list[dict[str, Any]] | None = None,
    ) -> None:
        """Write everything a step produced, atomically, and advance ``last_step``."""
        with Session(self.engine) as session:
            if turns:
                session.execute(insert(table_of(DialogueTurnRow)), turns)
            if interactions:
                session.execute(insert(table_of(InteractionRow)), interactions)
            if messages:
                session.execute(insert(table_of(MessageRow)), messages)
            if states:
                ids = [s["agent_id"] for s in states]
                for start in range(0, len(ids), 900):
                    session.execute(
                        delete(AgentStateRow).where(
                            col(AgentStateRow.run_id) == run_id,
                            col(AgentStateRow.agent_id).in_(ids[start : start + 900]),
                        )
                    )
                session.execute(insert(table_of(AgentStateRow)), states)
            session.execute(
                insert(table_of(StepMetricRow)),
                [{"run_id": run_id, "step": step, "metrics": metrics}],
            )
            session.execute(
                update(RunRow)
                .where(col(RunRow.id) == run_id)
                .values(last_step=step, rng_state=rng_state, usage=usage, updated=utc_now())
            )
            session.commit()

    def set_status(self, run_id: str, status: str, usage: dict[str, Any] | None = None) -> None:
        """Record the run's status; a run that stops (any status but running) is checkpointed,
        so its SQLite file alone holds all of it."""
        values: dict[str, Any] = {"status": status, "updated": utc_now()}
        if usage is not None:
            values["usage"] = usage
        with Session(self.engine) as session:
            session.execute(update(RunRow).where(col(RunRow.id) == run_id).values(**values))
            session.commit()
        if status != "running":
            self.checkpoint()

    def checkpoint(self) -> None:
        """Move SQLite's write-ahead log into the database file and empty it: until then
        ``run.db`` alone (copied, mailed, archived without its ``-wal``) can be an empty
        database. Nothing to do on other databases."""
        if self.engine.dialect.name == "sqlite":
            with self.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def set_llm(self, run_id: str, backend: str, model: str, llm_config: dict[str, Any]) -> None:
        """Record the backend, model and LLM configuration a run continues with."""
        values = {
            "backend": backend,
            "model": model,
            "llm_config": llm_config,
            "updated": utc_now(),
        }
        with Session(self.engine) as session:
            session.execute(update(RunRow).where(col(RunRow.id) == run_id).values(**values))
            session.commit()

    def add_experiment_runs(self, rows: list[ExperimentRunRow]) -> None:
        """Record which runs make up an experiment (after :meth:`create_run` of each)."""
        with Session(self.engine) as session:
            session.add_all(rows)
            session.commit()

    def experiment_runs(self) -> list[ExperimentRunRow]:
        """The experiment's runs in plan order; empty for a database of plain runs."""
        with Session(self.engine) as session:
            query = select(ExperimentRunRow).order_by(col(ExperimentRunRow.position))
            return list(session.execute(query).scalars())

    def run(self, run_id: str | None = None) -> RunRow | None:
        """The run with ``run_id``, or the only/latest run when None."""
        with Session(self.engine) as session:
            query = select(RunRow)
            query = (
                query.where(col(RunRow.id) == run_id)
                if run_id
                else query.order_by(col(RunRow.created).desc())
            )
            return session.execute(query).scalars().first()

    def _rows(self, table: type[Row], run_id: str, *order: Any) -> list[Row]:
        with Session(self.engine) as session:
            query = select(table).where(table_of(table).c.run_id == run_id)
            if order:
                query = query.order_by(*order)
            return list(session.execute(query).scalars())

    def agents(self, run_id: str) -> list[AgentRow]:
        return self._rows(AgentRow, run_id, AgentRow.agent_id)

    def edges(self, run_id: str) -> list[EdgeRow]:
        return self._rows(EdgeRow, run_id, EdgeRow.id)

    def states(self, run_id: str) -> dict[int, tuple[int, dict[str, Any]]]:
        """Each saved agent's (step saved, state)."""
        return {r.agent_id: (r.step, r.state) for r in self._rows(AgentStateRow, run_id)}

    def interactions(self, run_id: str) -> list[InteractionRow]:
        # The id breaks ties in the order of writing, whatever order the database scans in.
        return self._rows(
            InteractionRow, run_id, InteractionRow.step, InteractionRow.agent_id, InteractionRow.id
        )

    def messages(self, run_id: str, kind: str | None = None) -> list[MessageRow]:
        """Deliveries in the order they happened, optionally only ``event`` or ``post``."""
        rows = self._rows(MessageRow, run_id, MessageRow.id)
        return [r for r in rows if kind is None or r.kind == kind]

    def dialogue_turns(self, run_id: str) -> list[DialogueTurnRow]:
        """NPC conversation turns, by conversation then turn."""
        return self._rows(
            DialogueTurnRow,
            run_id,
            DialogueTurnRow.conversation,
            DialogueTurnRow.turn,
            DialogueTurnRow.id,
        )

    def step_metrics(self, run_id: str) -> list[StepMetricRow]:
        return self._rows(StepMetricRow, run_id, StepMetricRow.step)

    def resolve(self, outcome: OutcomeRow) -> None:
        """Record a question's real outcome, replacing an earlier one for the same question."""
        # Not expired on commit: the caller goes on reading ``outcome`` after the session.
        with Session(self.engine, expire_on_commit=False) as session:
            session.execute(
                delete(OutcomeRow).where(
                    col(OutcomeRow.run_id) == outcome.run_id,
                    col(OutcomeRow.question) == outcome.question,
                )
            )
            session.add(outcome)
            session.commit()

    def outcomes(self, run_id: str) -> list[OutcomeRow]:
        """The run's resolved questions, by question id."""
        return self._rows(OutcomeRow, run_id, OutcomeRow.question)

    def close(self) -> None:
        """Checkpoint (see :meth:`checkpoint`) and release the connections."""
        self.checkpoint()
        self.engine.dispose()
