"""The run database's tables: one SQLModel row class per table, and the Alembic schema
(:data:`RUN_SCHEMA`, revisions in ``sandbox/migrations``) they are migrated with.

Adding a column or table here needs a revision (docs/migrations.md), which a test enforces.
:class:`sandbox.rundb.RunDatabase` reads and writes them (and ``sandbox.rundb`` re-exports
every name here, where most code imports them from).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Column, Table, Text
from sqlmodel import Field, SQLModel

from personahub.db.engine import BIG_ID
from personahub.db.migrations import Schema


def utc_now() -> datetime:
    """Now, timezone-aware (UTC): the default of every timestamp column."""
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
    created: datetime = Field(default_factory=utc_now)
    updated: datetime = Field(default_factory=utc_now)


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
    created: datetime = Field(default_factory=utc_now)


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
    resolved_at: datetime = Field(default_factory=utc_now)


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


def table_of(model: type[SQLModel]) -> Table:
    """The SQLAlchemy table of a table model."""
    # SQLModel's metaclass sets ``__table__`` on table models, but its stubs do not declare it.
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


RUN_SCHEMA = Schema(
    name="run database",
    script_location=Path(__file__).resolve().parent / "migrations",
    version_table="alembic_version_sandbox_run",
    metadata=SQLModel.metadata,
    tables=frozenset(table_of(model).name for model in RUN_TABLES),
)
"""The run database's Alembic environment; its own version table lets a persona store share
the PostgreSQL database."""
