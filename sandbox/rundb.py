"""The run database: every run, agent, interaction and message, committed once per step.

One SQLModel schema on any SQLAlchemy URL; by default ``runs/<run-id>/run.db``. A step's
interactions, messages, agent states, metrics and the random state are written in one
transaction, so a killed run resumes from its last committed step with nothing half-written.

The schema is migrated with Alembic (:data:`RUN_SCHEMA`, revisions in ``sandbox/migrations``):
adding a column or table here needs a revision (docs/migrations.md), which a test enforces.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import JSON, Column, Table, Text, delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Field, Session, SQLModel, col

from personahub.db.engine import BIG_ID, DatabaseError, database_url, make_engine, safe_url
from personahub.db.migrations import Schema, upgrade


def _now() -> datetime:
    return datetime.now(UTC)


class RunRow(SQLModel, table=True):
    """One simulation run."""

    __tablename__ = "runs"
    id: str = Field(primary_key=True)
    name: str
    scenario_path: str = ""
    scenario_yaml: str = Field(sa_column=Column(Text))
    scenario_hash: str
    config_hash: str
    seed: int
    backend: str
    model: str
    llm_config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    status: str = "running"
    steps_total: int
    last_step: int = -1
    rng_state: list[Any] | None = Field(default=None, sa_column=Column(JSON))
    usage: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    # What the run was expected to spend (sandbox.estimate.run.Estimate as data), computed
    # at its start. NULL in runs written before revision 0005.
    estimate: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    created: datetime = Field(default_factory=_now)
    updated: datetime = Field(default_factory=_now)


class AgentRow(SQLModel, table=True):
    """An agent and the persona it plays."""

    __tablename__ = "agents"
    run_id: str = Field(primary_key=True, foreign_key="runs.id")
    agent_id: int = Field(primary_key=True)
    persona_id: str
    persona: str = Field(sa_column=Column(Text))
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    community: int = 0
    degree: int = 0
    # NPC worlds: the system prompt the NPC speaks under and its character profile, what
    # the dialogue export uses as a sample's system message. Empty for forecast agents,
    # whose system prompt is stored with each of their interactions.
    system_prompt: str = Field(default="", sa_column=Column(Text))
    profile: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    # Raking weight (``population.match``, mean 1 over the run's agents); None when the
    # scenario matches nothing, and in rows written before revision 0003.
    weight: float | None = None


class AgentStateRow(SQLModel, table=True):
    """An agent's state as of the last committed step (upserted per step)."""

    __tablename__ = "agent_state"
    run_id: str = Field(primary_key=True, foreign_key="runs.id")
    agent_id: int = Field(primary_key=True)
    step: int
    state: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class InteractionRow(SQLModel, table=True):
    """One agent decision: the prompt, the raw reply, what was parsed, and its cost."""

    __tablename__ = "interactions"
    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    run_id: str = Field(foreign_key="runs.id", index=True)
    step: int = Field(index=True)
    agent_id: int
    messages: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON))
    # What the agent saw for this request, as data (``Observation.to_json``: step, kind,
    # source, content, strength, sender); the report's transcripts read it. NULL in rows
    # written before revision 0002.
    observations: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    raw_response: str = Field(default="", sa_column=Column(Text))
    parsed: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    reaction: str = Field(default="", sa_column=Column(Text))
    post: str = Field(default="", sa_column=Column(Text))
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    retries: int = 0
    cached: bool = False
    error_kind: str | None = None
    error_message: str | None = Field(default=None, sa_column=Column(Text))


class MessageRow(SQLModel, table=True):
    """Something delivered to an agent: an event, or a neighbour's post along an edge."""

    __tablename__ = "messages"
    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    run_id: str = Field(foreign_key="runs.id", index=True)
    step: int
    kind: str  # "event" | "post"
    src_agent: int | None = None
    dst_agent: int
    relation: str = ""
    source: str = ""
    content: str = Field(sa_column=Column(Text))


class EdgeRow(SQLModel, table=True):
    """An edge of the run's relationship graph."""

    __tablename__ = "edges"
    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    run_id: str = Field(foreign_key="runs.id", index=True)
    src: int
    dst: int
    relation: str
    strength: float = 1.0


class DialogueTurnRow(SQLModel, table=True):
    """One turn of an NPC-world conversation; a conversation's turns are numbered from 0."""

    __tablename__ = "dialogue_turns"
    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    run_id: str = Field(foreign_key="runs.id", index=True)
    step: int = Field(index=True)
    conversation: int  # run-wide conversation number
    turn: int
    speaker: int  # agent id; PLAYER_ID for the scripted player
    listener: int
    topic: str = Field(default="", sa_column=Column(Text))
    content: str = Field(default="", sa_column=Column(Text))
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error_kind: str | None = None
    error_message: str | None = Field(default=None, sa_column=Column(Text))


PLAYER_ID = -1
"""``speaker``/``listener`` of the scripted player in :class:`DialogueTurnRow`."""


class InterviewRow(SQLModel, table=True):
    """A question put to an agent outside its steps, and its reply: one turn of an interview,
    or one answer to a survey of the crowd (:mod:`sandbox.interview`).

    Its own table, not a kind of :class:`InteractionRow`: the forecast, the report and the
    ``agent`` export read ``interactions`` only, so no interview can count in them.
    """

    __tablename__ = "interviews"
    id: int | None = Field(default=None, primary_key=True, sa_type=BIG_ID)
    run_id: str = Field(foreign_key="runs.id", index=True)
    agent_id: int
    kind: str  # "interview" | "survey"
    session: str  # the interview (all its turns) or the survey this row belongs to
    turn: int = 0
    step: int  # the agent answered from its memory as of the end of this step
    question: str = Field(sa_column=Column(Text))
    messages: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON))
    reply: str = Field(default="", sa_column=Column(Text))
    parsed: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cached: bool = False
    error_kind: str | None = None
    error_message: str | None = Field(default=None, sa_column=Column(Text))
    created: datetime = Field(default_factory=_now)


class StepMetricRow(SQLModel, table=True):
    """The per-step metrics gathered by Mesa's DataCollector."""

    __tablename__ = "step_metrics"
    run_id: str = Field(primary_key=True, foreign_key="runs.id")
    step: int = Field(primary_key=True)
    metrics: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class ExperimentRunRow(SQLModel, table=True):
    """Which arm, seed and sweep point a run of an experiment is (``sandbox experiment``)."""

    __tablename__ = "experiment_runs"
    run_id: str = Field(primary_key=True, foreign_key="runs.id")
    experiment: str = Field(index=True)
    arm: str
    control: bool = False
    seed_index: int = 0
    point: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    position: int = 0


class OutcomeRow(SQLModel, table=True):
    """The real outcome of one question of a run (``sandbox resolve``), and who recorded it.

    ``actual`` and ``predicted`` are distributions keyed like the forecast (choice: option ->
    share; likert: ``"1".."k"`` -> share) or ``{"mean": x}`` for a number question;
    ``predicted`` is the run's forecast when it was resolved, so scores never need the run
    rebuilt.
    """

    __tablename__ = "outcomes"
    run_id: str = Field(primary_key=True, foreign_key="runs.id")
    question: str = Field(primary_key=True)
    actual: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON))
    predicted: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON))
    n: int | None = None  # respondents, when the outcome came from a file of answers
    source: str = Field(default="", sa_column=Column(Text))
    resolved_by: str = ""
    resolved_at: datetime = Field(default_factory=_now)


RUN_TABLES: list[type[SQLModel]] = [
    RunRow,
    AgentRow,
    AgentStateRow,
    InteractionRow,
    MessageRow,
    EdgeRow,
    DialogueTurnRow,
    StepMetricRow,
    ExperimentRunRow,
    OutcomeRow,
    InterviewRow,
]


Row = TypeVar("Row", bound=SQLModel)


def _table(model: type[SQLModel]) -> Table:
    # SQLModel's metaclass sets ``__table__`` on table models, but its stubs do not declare it.
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


RUN_SCHEMA = Schema(
    name="run database",
    script_location=Path(__file__).resolve().parent / "migrations",
    version_table="alembic_version_sandbox_run",
    metadata=SQLModel.metadata,
    tables=frozenset(_table(model).name for model in RUN_TABLES),
)
"""The run database's Alembic environment; its own version table lets a persona store share
the PostgreSQL database."""


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
                session.execute(insert(_table(AgentRow)), agents)
            if edges:
                session.execute(insert(_table(EdgeRow)), edges)
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
                session.execute(insert(_table(DialogueTurnRow)), turns)
            if interactions:
                session.execute(insert(_table(InteractionRow)), interactions)
            if messages:
                session.execute(insert(_table(MessageRow)), messages)
            if states:
                ids = [s["agent_id"] for s in states]
                for start in range(0, len(ids), 900):
                    session.execute(
                        delete(AgentStateRow).where(
                            col(AgentStateRow.run_id) == run_id,
                            col(AgentStateRow.agent_id).in_(ids[start : start + 900]),
                        )
                    )
                session.execute(insert(_table(AgentStateRow)), states)
            session.execute(
                insert(_table(StepMetricRow)),
                [{"run_id": run_id, "step": step, "metrics": metrics}],
            )
            session.execute(
                update(RunRow)
                .where(col(RunRow.id) == run_id)
                .values(last_step=step, rng_state=rng_state, usage=usage, updated=_now())
            )
            session.commit()

    def set_status(self, run_id: str, status: str, usage: dict[str, Any] | None = None) -> None:
        """Record the run's status; a run that stops (any status but running) is checkpointed,
        so its SQLite file alone holds all of it."""
        values: dict[str, Any] = {"status": status, "updated": _now()}
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
        values = {"backend": backend, "model": model, "llm_config": llm_config, "updated": _now()}
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
            query = select(table).where(_table(table).c.run_id == run_id)
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
