"""A run as pandas DataFrames, for notebooks and scripts.

>>> from sandbox import load_run
>>> run = load_run("runs/product-launch-20261127-101500-ab12")
>>> run.metrics.plot(x="step")           # per-step metrics (Mesa's DataCollector)
>>> run.interactions.groupby("step")["intent"].value_counts(normalize=True)
>>> run.agents.merge(run.interactions, on="agent_id")

Every table is one row per record, with JSON fields spread into columns: an agent's attributes
become columns of ``agents``, a reply's parsed answers columns of ``interactions`` (named by
question id). ``RunFrames.save`` writes them all as CSV or Parquet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sandbox.run_folders import RunError, locate_run
from sandbox.rundb import RunDatabase

if TYPE_CHECKING:
    import pandas as pd

TABLES = ("agents", "interactions", "metrics", "messages", "edges", "dialogue")


def _spread(rows: list[dict[str, Any]], nested: str, prefix: str = "") -> list[dict[str, Any]]:
    """Each row with its ``nested`` dict's keys as columns (a key that would overwrite one of the
    row's own columns is prefixed with ``nested.``)."""
    out = []
    for row in rows:
        inner = row.pop(nested, None) or {}
        for key, value in inner.items():
            name = f"{prefix}{key}"
            row[f"{nested}.{key}" if name in row else name] = value
        out.append(row)
    return out


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=columns)


@dataclass
class RunFrames:
    """One run's tables as DataFrames, each read from the run database on first use.

    Attributes:
        run_id: The run.
        info: The run's header: name, status, seed, steps, backend, model, usage, created.
    """

    database: RunDatabase = field(repr=False)
    run_id: str
    info: dict[str, Any]

    @cached_property
    def agents(self) -> pd.DataFrame:
        """One row per agent: ``agent_id``, ``persona_id``, ``persona``, ``community``,
        ``degree`` and one column per persona attribute."""
        rows = [
            row.model_dump(include={"agent_id", "persona_id", "persona", "community", "degree"})
            | {"attributes": row.attributes}
            for row in self.database.agents(self.run_id)
        ]
        columns = ["agent_id", "persona_id", "persona", "community", "degree"]
        return _frame(_spread(rows, "attributes"), columns)

    @cached_property
    def interactions(self) -> pd.DataFrame:
        """One row per model call of an agent: ``step``, ``agent_id``, ``reaction``, ``post``,
        one column per answered question, tokens, latency, retries, ``cached``, ``error_kind``
        and ``error_message`` (answers are empty where the call failed)."""
        keep = {
            "step",
            "agent_id",
            "reaction",
            "post",
            "prompt_tokens",
            "completion_tokens",
            "latency_s",
            "retries",
            "cached",
            "error_kind",
            "error_message",
        }
        rows = [
            row.model_dump(include=keep) | {"parsed": _answers(row.parsed)}
            for row in self.database.interactions(self.run_id)
        ]
        return _frame(_spread(rows, "parsed"), sorted(keep))

    @cached_property
    def metrics(self) -> pd.DataFrame:
        """One row per committed step: ``step`` and every metric the model collected."""
        rows = [{"step": m.step, **m.metrics} for m in self.database.step_metrics(self.run_id)]
        return _frame(rows, ["step"])

    @cached_property
    def messages(self) -> pd.DataFrame:
        """What reached agents: events and neighbours' posts, with sender, receiver, step."""
        exclude = {"id", "run_id"}
        rows = [m.model_dump(exclude=exclude) for m in self.database.messages(self.run_id)]
        columns = ["step", "kind", "src_agent", "dst_agent", "relation", "source", "content"]
        return _frame(rows, columns)

    @cached_property
    def edges(self) -> pd.DataFrame:
        """The relationship graph: ``src``, ``dst``, ``relation``, ``strength``."""
        rows = [e.model_dump(exclude={"id", "run_id"}) for e in self.database.edges(self.run_id)]
        return _frame(rows, ["src", "dst", "relation", "strength"])

    @cached_property
    def dialogue(self) -> pd.DataFrame:
        """NPC worlds: one row per conversation turn (empty for forecast runs)."""
        rows = [
            t.model_dump(exclude={"id", "run_id"})
            for t in self.database.dialogue_turns(self.run_id)
        ]
        columns = ["step", "conversation", "turn", "speaker", "listener", "topic", "content"]
        return _frame(rows, columns)

    def save(self, folder: str | Path, fmt: Literal["csv", "parquet"] = "csv") -> list[Path]:
        """Write every non-empty table as ``folder/<table>.<fmt>``; returns the files written."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for name in TABLES:
            frame = getattr(self, name)
            if frame.empty:
                continue
            path = folder / f"{name}.{fmt}"
            if fmt == "csv":
                frame.to_csv(path, index=False)
            else:
                # Parquet wants one type per column; JSON answers (lists) and mixed types as text
                frame.astype(
                    {c: str for c in frame.columns if frame[c].dtype == object}
                ).to_parquet(path, index=False)
            written.append(path)
        return written

    def close(self) -> None:
        self.database.close()


def _answers(parsed: dict[str, Any] | None) -> dict[str, Any]:
    # reaction/post have their own columns already
    return {k: v for k, v in (parsed or {}).items() if k not in ("reaction", "post")}


def load_run(ref: str | Path, run_id: str | None = None, runs: str | Path = "runs") -> RunFrames:
    """Open a finished or running run for analysis.

    Args:
        ref: A run folder, its ``run.db``, a run id under ``runs``, or a database URL.
        run_id: Which run, when the database holds several (default: the latest).
        runs: The folder holding run folders, for a bare run id.

    Raises:
        RunError: Nothing found at ``ref``, or it holds no such run.
    """
    database = RunDatabase(locate_run(ref, Path(runs)), must_exist=True)
    run = database.run(run_id)
    if run is None:
        database.close()
        raise RunError(f"{ref} holds no run" + (f" {run_id}" if run_id else ""))
    info = run.model_dump(
        include={"id", "name", "status", "seed", "steps_total", "last_step", "backend", "model"}
    ) | {"usage": run.usage, "created": run.created}
    return RunFrames(database, run.id, info)
