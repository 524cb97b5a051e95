"""What each agent has seen and said, as arrays: the state a step reads and writes.

Per agent: whether it has heard of the scenario, which timeline events reached it (a bit per
event), how many neighbours' posts it has heard and with which stance (a post's stance is its
author's answer to the scenario's first question), its answer code per question (-1: none yet)
and how often it acted. Saved as one Parquet file per committed step, which is what a resume
reads back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAX_EVENTS = 32  # the events bitmask is a uint32


@dataclass
class PopulationState:
    aware: np.ndarray  # bool (n,)
    events: np.ndarray  # uint32 (n,): bit e set when timeline event e reached the agent
    heard: np.ndarray  # uint16 (n, k): neighbours' posts heard, per stance option
    answers: np.ndarray  # int8 (n, questions): option code, -1 before the first answer
    acted: np.ndarray  # uint16 (n,)

    @classmethod
    def empty(cls, n: int, n_questions: int, n_stances: int) -> PopulationState:
        return cls(
            aware=np.zeros(n, dtype=bool),
            events=np.zeros(n, dtype=np.uint32),
            heard=np.zeros((n, n_stances), dtype=np.uint16),
            answers=np.full((n, n_questions), -1, dtype=np.int8),
            acted=np.zeros(n, dtype=np.uint16),
        )

    @property
    def n(self) -> int:
        return len(self.aware)

    def posts_heard(self) -> np.ndarray:
        return self.heard.sum(axis=1, dtype=np.int64)

    def hear(self, counts: np.ndarray) -> None:
        """Add ``(n, k)`` counts of posts heard per stance (saturating at the dtype's top)."""
        total = self.heard.astype(np.int64) + counts
        np.minimum(total, np.iinfo(np.uint16).max, out=total)
        self.heard[:] = total
        self.aware |= counts.any(axis=1)

    def save(self, path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns: dict[str, np.ndarray] = {
            "aware": self.aware,
            "events": self.events,
            "acted": self.acted,
        }
        for k in range(self.heard.shape[1]):
            columns[f"heard_{k}"] = self.heard[:, k]
        for q in range(self.answers.shape[1]):
            columns[f"answer_{q}"] = self.answers[:, q]
        tmp = path.with_suffix(".tmp")
        pq.write_table(pa.table(columns), tmp)
        tmp.replace(path)  # a killed write never leaves a half file under the real name

    @classmethod
    def load(cls, path: Path) -> PopulationState:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        names = table.column_names

        def column(name: str) -> np.ndarray:
            return table.column(name).to_numpy()

        heard = [n for n in names if n.startswith("heard_")]
        answers = [n for n in names if n.startswith("answer_")]
        return cls(
            aware=column("aware").astype(bool),
            events=column("events").astype(np.uint32),
            heard=np.stack([column(n) for n in heard], axis=1).astype(np.uint16),
            answers=np.stack([column(n) for n in answers], axis=1).astype(np.int8),
            acted=column("acted").astype(np.uint16),
        )
