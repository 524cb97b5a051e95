"""Turn samples into format records and write them: one file, or a seeded train/val split.

* ``openai``: JSONL, one ``{"messages": [...]}`` per line (OpenAI chat fine-tuning).
* ``sharegpt``: one JSON array of ``{"conversations": [{"from", "value"}, ...]}``.
* ``parquet``: a ``messages`` column (list of ``{role, content}``) and metadata columns, with a
  fixed schema so that an empty split still loads with the same columns.

A split keeps each group (an agent interaction, or a whole NPC conversation) on one side, so
no conversation is seen in training from one NPC's side and in validation from another's.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sandbox.export.records import (
    SHAREGPT_SPEAKER,
    Format,
    OpenAIRecord,
    ParquetRecord,
    Record,
    ShareGPTRecord,
)
from sandbox.export.samples import Sample

PARQUET_SCHEMA = pa.schema(
    [
        pa.field(
            "messages",
            pa.list_(pa.struct([pa.field("role", pa.string()), pa.field("content", pa.string())])),
        ),
        pa.field("run_id", pa.string()),
        pa.field("source", pa.string()),
        pa.field("agent_id", pa.int64()),
        pa.field("persona_id", pa.string()),
        pa.field("step", pa.int64()),
        pa.field("conversation", pa.int64(), nullable=True),
    ]
)


def to_record(sample: Sample, fmt: Format) -> Record:
    """The validated record of ``sample`` in ``fmt``.

    Raises:
        pydantic.ValidationError: The sample breaks the format's rules.
    """
    if fmt == "openai":
        return OpenAIRecord.model_validate({"messages": sample.messages})
    if fmt == "sharegpt":
        turns = [
            {"from": SHAREGPT_SPEAKER.get(m["role"], m["role"]), "value": m["content"]}
            for m in sample.messages
        ]
        return ShareGPTRecord.model_validate({"conversations": turns})
    if fmt == "parquet":
        return ParquetRecord.model_validate(
            {
                "messages": sample.messages,
                "run_id": sample.run_id,
                "source": sample.source,
                "agent_id": sample.agent_id,
                "persona_id": sample.persona_id,
                "step": sample.step,
                "conversation": sample.conversation,
            }
        )
    raise ValueError(f"unknown format {fmt!r}")


def write_records(records: Sequence[Record], path: Path, fmt: Format) -> None:
    """Write ``records`` to ``path`` in ``fmt``, replacing it only once fully written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        if fmt == "openai":
            with partial.open("w", encoding="utf-8") as out:
                for record in records:
                    out.write(json.dumps(record.model_dump(), ensure_ascii=False) + "\n")
        elif fmt == "sharegpt":
            rows = [record.model_dump(by_alias=True) for record in records]
            partial.write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n", "utf-8")
        else:
            rows = [record.model_dump() for record in records]
            pq.write_table(pa.Table.from_pylist(rows, schema=PARQUET_SCHEMA), partial)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def split_paths(path: Path) -> tuple[Path, Path]:
    """``out.jsonl`` -> ``out.train.jsonl``, ``out.val.jsonl``."""
    return (
        path.with_name(f"{path.stem}.train{path.suffix}"),
        path.with_name(f"{path.stem}.val{path.suffix}"),
    )


def split_groups(groups: Sequence[str], train_fraction: float, seed: int) -> set[str]:
    """The groups that go to training: a seeded shuffle of the distinct groups, cut at
    ``train_fraction``, leaving at least one group on each side when there are two or more.

    Depends only on the set of groups and the seed, not on their order.
    """
    distinct = sorted(set(groups))
    random.Random(seed).shuffle(distinct)
    n_train = round(train_fraction * len(distinct))
    if len(distinct) >= 2:
        n_train = min(max(n_train, 1), len(distinct) - 1)
    return set(distinct[:n_train])
