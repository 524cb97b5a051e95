"""What a store dedup removed, and why: ``personahub dedup --removed FILE``.

For each dropped persona: its id and text, the kept persona it duplicates (id and text),
the stage that dropped it and the similarity that stage measures between the two. The
dedup stages do not keep their scores (millions of comparisons, almost all of them not
duplicates), so the similarity is recomputed here for the dropped pairs only:

* ``minhash``: the estimated Jaccard of the two word sets, from the stage's own MinHash
  signatures (the figure it compared with ``--minhash-threshold``);
* ``embedding``: the cosine of the two MiniLM vectors (the store's persisted ones), the
  figure compared with ``--embedding-threshold``. Under ``--two-stage`` the decision is
  also made on MiniLM vectors, so the figure is the same.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from personahub.dedup.embedding import VectorSource, unit_rows
from personahub.dedup.minhash import MinHasher


class RemovedPersona(BaseModel):
    """One persona dedup dropped, with the persona it matched: kept by the stage that
    dropped this one (a later stage may still drop it, and then it has its own row)."""

    id: int
    text: str
    kept_id: int
    kept_text: str
    stage: str
    similarity: float


class Drop(BaseModel):
    """A drop as dedup decides it: persona, stage and the kept persona's id."""

    id: int
    text: str
    stage: str
    kept_id: int


def describe_drops(
    store: Any,
    drops: Sequence[Drop],
    hasher: MinHasher | None,
    vectors: VectorSource | None,
) -> list[RemovedPersona]:
    """The removed-list rows for ``drops`` (read the kept texts before deleting anything).

    Args:
        store: The persona store the drops come from.
        drops: What dedup dropped.
        hasher: The MinHash stage's hasher (None without that stage).
        vectors: The embedding stage's vector source (None without that stage).
    """
    kept_text = {i: store.get(i).text for i in {d.kept_id for d in drops}}
    scores = np.zeros(len(drops))
    for stage in {d.stage for d in drops}:
        rows = [i for i, d in enumerate(drops) if d.stage == stage]
        ids = [drops[i].id for i in rows]
        kept_ids = [drops[i].kept_id for i in rows]
        texts = [drops[i].text for i in rows]
        kept_texts = [kept_text[i] for i in kept_ids]
        if stage == "minhash":
            assert hasher is not None
            a, b = hasher.signatures(texts), hasher.signatures(kept_texts)
            scores[rows] = (a == b).mean(axis=1)
        else:
            assert vectors is not None
            a, b = unit_rows(vectors(ids, texts)), unit_rows(vectors(kept_ids, kept_texts))
            scores[rows] = (a * b).sum(axis=1)
    return [
        RemovedPersona(
            id=d.id,
            text=d.text,
            kept_id=d.kept_id,
            kept_text=kept_text[d.kept_id],
            stage=d.stage,
            similarity=round(float(score), 4),
        )
        for d, score in zip(drops, scores, strict=True)
    ]


def write_removed(path: str | Path, rows: Sequence[RemovedPersona]) -> None:
    """Write the removed-list as JSONL, one persona a line, in id order."""
    with Path(path).open("w", encoding="utf-8") as handle:
        for row in sorted(rows, key=lambda r: r.id):
            handle.write(json.dumps(row.model_dump(), ensure_ascii=False) + "\n")
