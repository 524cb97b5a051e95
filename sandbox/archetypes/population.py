"""Agents as columns: each persona attribute an array of small integer codes.

At a million agents a Python object per agent (a persona record, a dict of attributes) costs
more memory and time than the whole step. An :class:`AgentTable` holds one ``int16`` code per
agent and attribute plus each attribute's labels; a persona's text is composed on demand for
the few agents that need one (the fidelity sample, an agent page). It comes from attribute
marginals (each attribute drawn independently with the given shares) or from personas loaded
by the common population loader.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

UNKNOWN = "(unknown)"


@dataclass(frozen=True)
class AgentTable:
    """Persona attributes of ``n`` agents.

    Attributes:
        codes: Attribute name -> ``int16`` array of codes, one per agent.
        labels: Attribute name -> the value each code stands for.
        texts: Persona texts, where agents came from real personas (else None).
    """

    codes: dict[str, np.ndarray]
    labels: dict[str, tuple[str, ...]]
    texts: list[str] | None = None

    @property
    def n(self) -> int:
        return len(next(iter(self.codes.values()))) if self.codes else len(self.texts or [])

    def value(self, attribute: str, agent: int) -> str:
        return self.labels[attribute][int(self.codes[attribute][agent])]

    def attributes_of(self, agent: int) -> dict[str, str]:
        return {name: self.value(name, agent) for name in self.codes}

    def persona(self, agent: int) -> str:
        """The agent's persona text: its real persona, or one composed from its attributes."""
        if self.texts is not None:
            return self.texts[agent]
        return describe(self.attributes_of(agent))

    def mask(self, attributes: Mapping[str, str | Sequence[str]]) -> np.ndarray:
        """Agents whose attributes equal the given values (a list: any of them)."""
        out = np.ones(self.n, dtype=bool)
        for name, wanted in attributes.items():
            values = [wanted] if isinstance(wanted, str) else list(wanted)
            codes = [self.labels[name].index(v) for v in values if v in self.labels.get(name, ())]
            out &= np.isin(self.codes[name], codes) if name in self.codes else False
        return out

    def save(self, path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = {
            name: pa.DictionaryArray.from_arrays(codes, list(self.labels[name]))
            for name, codes in self.codes.items()
        }
        if self.texts is not None:
            columns["persona"] = pa.array(self.texts)
        pq.write_table(pa.table(columns), path)

    @classmethod
    def load(cls, path: Path) -> AgentTable:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        codes: dict[str, np.ndarray] = {}
        labels: dict[str, tuple[str, ...]] = {}
        texts = None
        for name in table.column_names:
            column = table.column(name).combine_chunks()
            if name == "persona":
                texts = column.to_pylist()
                continue
            codes[name] = column.indices.to_numpy().astype(np.int16)
            labels[name] = tuple(column.dictionary.to_pylist())
        return cls(codes, labels, texts)


def describe(attributes: Mapping[str, str]) -> str:
    """A plain persona sentence from attributes: "A person with age band 35-54, occupation
    nurse, region north." Plain on purpose: it says what is known and invents nothing."""
    facts = ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in attributes.items())
    return f"A person with {facts}." if facts else "A person."


def from_marginals(
    n: int, marginals: Mapping[str, Mapping[str, float]], rng: np.random.Generator
) -> AgentTable:
    """``n`` agents whose attributes are drawn independently with the given shares (each
    attribute's shares are normalised to sum to 1)."""
    codes: dict[str, np.ndarray] = {}
    labels: dict[str, tuple[str, ...]] = {}
    for name, shares in marginals.items():
        values = tuple(shares)
        p = np.array([shares[v] for v in values], dtype=float)
        codes[name] = rng.choice(len(values), size=n, p=p / p.sum()).astype(np.int16)
        labels[name] = values
    return AgentTable(codes, labels)


def from_personas(
    texts: Sequence[str], attributes: Sequence[Mapping[str, object]], names: Sequence[str]
) -> AgentTable:
    """Agents from loaded personas: the named attributes coded (a missing value becomes
    ``(unknown)``, which :mod:`sandbox.archetypes.scenario` reports before the run)."""
    codes: dict[str, np.ndarray] = {}
    labels: dict[str, tuple[str, ...]] = {}
    for name in names:
        raw = [
            str(a.get(name, UNKNOWN)) if a.get(name) is not None else UNKNOWN for a in attributes
        ]
        values = tuple(sorted(set(raw)))
        index = {v: i for i, v in enumerate(values)}
        codes[name] = np.fromiter((index[v] for v in raw), dtype=np.int16, count=len(raw))
        labels[name] = values
    return AgentTable(codes, labels, list(texts))
