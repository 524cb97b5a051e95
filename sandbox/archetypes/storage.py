"""What an archetype run keeps, beside the run database's run row, metrics and requests.

The run folder holds the columns a million agents need without an ORM row each:
``agents.parquet`` (attribute codes, dictionary-encoded), ``graph.npz`` (CSR arrays), and per
committed step ``steps/state_NNNN.parquet`` (every agent's state), ``steps/pending_NNNN.npy``
and ``steps/archetypes_NNNN.parquet`` (each archetype: its attributes, exposure, size and
answer distribution). The run database holds one interaction row per request (an archetype's
rows carry ``agent_id`` -1 - archetype index and the archetype in ``parsed``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from personahub.llm import LLMResult
from sandbox.recorded_model import result_columns

if TYPE_CHECKING:
    from sandbox.archetypes.asking import Ask
    from sandbox.archetypes.buckets import Buckets
    from sandbox.archetypes.model import ArchetypeModel

AGENTS_FILE = "agents.parquet"
GRAPH_FILE = "graph.npz"


def write_archetypes(path: Path, model: ArchetypeModel, buckets: Buckets) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: dict[str, list[Any]] = {"key": [], "size": [], "heard": [], "stance": [], "events": []}
    names = model.scenario.archetype.attributes
    for name in names:
        rows[name] = []
    probs_columns: dict[str, list[float | None]] = {
        f"{q.id}={label}": []
        for qi, q in enumerate(model.scenario.questions)
        for label in model.labels[qi]
    }
    for index, archetype in enumerate(buckets.archetypes):
        rows["key"].append(archetype.key())
        rows["size"].append(archetype.size)
        rows["heard"].append(archetype.heard)
        rows["stance"].append(archetype.stance)
        rows["events"].append(list(archetype.events))
        for name in names:
            rows[name].append(archetype.attributes[name])
        found = model.last_probs[index]
        for qi, q in enumerate(model.scenario.questions):
            for oi, label in enumerate(model.labels[qi]):
                probs_columns[f"{q.id}={label}"].append(
                    None if found is None else float(found[qi][oi])
                )
    tmp = path.with_suffix(".tmp")
    pq.write_table(pa.table({**rows, **probs_columns}), tmp)
    tmp.replace(path)


def interaction_rows(
    model: ArchetypeModel, plan: list[Ask], results: list[list[LLMResult[Any]]], step: int
) -> list[dict[str, Any]]:
    """One row per request: the prompt, the reply, its cost; ``parsed`` holds which archetype
    (or fidelity agent) it answered for and the distribution it gave."""
    rows = []
    for ask, own in zip(plan, results, strict=True):
        archetype = model.last_archetypes[ask.archetype]
        for qi, result in enumerate(own):
            parsed: dict[str, Any] | None = None
            if result.error is None:
                parsed = {"_archetype": archetype.key(), "size": archetype.size}
                if result.distribution is not None:
                    question = model.scenario.questions[qi]
                    parsed["_distributions"] = {question.id: result.distribution.probs}
                elif result.parsed is not None:
                    parsed.update(result.raw_json() or {})
            rows.append(
                {
                    **result_columns(result),
                    "run_id": model.run_id,
                    "step": step,
                    "agent_id": ask.agent if ask.agent is not None else -1 - ask.archetype,
                    "observations": None,
                    "parsed": parsed,
                    "reaction": "",
                    "post": "",
                }
            )
    return rows
