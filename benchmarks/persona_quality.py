"""Persona quality on real texts: are Text-to-Persona personas single people, relevant to
their source, and are Persona-to-Persona relation labels real relations?

The texts are ~40 paragraphs that this project did not write: the package descriptions
(README text in each installed distribution's METADATA), picked programmatically. Per
distribution, in name order, the first paragraph of 25-120 words that reads as prose (no
code, tables, markup lines or link lists); then every k-th of those so the set spreads over
the whole environment.

A build runs on them with the embedded model (SmolLM2-135M): Text-to-Persona with the
``read`` and ``write`` angles, then one hop of Persona-to-Persona (2 per parent), in a
throwaway store. Each stored Text-to-Persona persona is then judged:

* single person: :func:`personahub.build.person_check.non_person_reason` finds nothing
  (teams, groups, organisations, tools and products are not people);
* relevant: MiniLM cosine between the persona and its source paragraph >= 0.25
  (:data:`RELEVANCE_THRESHOLD`, fixed before measuring).

Figure: the share of stored Text-to-Persona personas that are both, target >= 0.75. Also
printed: counts per drop reason, the relation labels of hop 1, and 20 personas with their
source for a judgement by eye (``--show``).

Run: ``.venv/bin/python benchmarks/persona_quality.py [--texts 40] [--show 20]``
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import result_line
from personahub.build.person_check import non_person_reason
from personahub.build.pipeline import BuildOptions, PersonaBuilder
from personahub.build.sources import SourceRecord
from personahub.embeddings import get_embedder
from personahub.llm import LLMClient, load_settings
from personahub.rows import text_hash
from personahub.store import PersonaStore, SourceText

RELEVANCE_THRESHOLD = 0.25
TARGET = 0.75
_NOT_PROSE = re.compile(
    r"^\s*(?:[#=*|>$`:.-]|\d+\.|\[|!\[|<|\.\.|>>>|pip |python |from |import |http)", re.M
)


def _paragraphs(description: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", description) if p.strip()]


def _prose(paragraph: str, raw: str) -> bool:
    words = paragraph.split()
    letters = sum(c.isalpha() or c.isspace() for c in paragraph) / max(len(paragraph), 1)
    return (
        25 <= len(words) <= 120
        and letters >= 0.9
        and not _NOT_PROSE.search(raw)
        and paragraph.count("http") == 0
        and paragraph[-1] in ".!?"
    )


def real_paragraphs(n: int) -> list[tuple[str, str]]:
    """``n`` prose paragraphs from installed package descriptions, as (package, text)."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = (dist.metadata.get("Name") or "").lower()
        description = dist.metadata.get("Description") or dist.metadata.get_payload() or ""
        if not name or name in found or not isinstance(description, str):
            continue
        for raw in re.split(r"\n\s*\n", description):
            text = " ".join(raw.split())
            if text and _prose(text, raw):
                found[name] = text
                break
    picked = sorted(found.items())
    step = max(1, len(picked) // n)
    return picked[::step][:n]


def _source_texts(store: PersonaStore) -> dict[int, str]:
    from sqlmodel import select

    with store.session() as session:
        return {int(s.id): s.text for s in session.exec(select(SourceText))}  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=40)
    parser.add_argument("--show", type=int, default=20, help="personas printed for judgement")
    args = parser.parse_args()
    paragraphs = real_paragraphs(args.texts)
    print(f"{len(paragraphs)} paragraphs from installed packages", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        store = PersonaStore(str(Path(tmp) / "personas.db"))
        client = LLMClient(load_settings(None, backend="local", cache_path=Path(tmp) / "c.db"))
        options = BuildOptions(hops=1, per_hop=2, chunk_size=len(paragraphs))
        builder = PersonaBuilder(store, client, options)
        records = [
            SourceRecord(id=f"pkg:{name}", text=t, content_hash=text_hash(t), origin=f"pkg:{name}")
            for name, t in paragraphs
        ]
        report = asyncio.run(builder.run(records))
        sources = _source_texts(store)
        personas = list(store.iter_personas())
        edges = list(store.edges())
    t2p = [p for p in personas if p.origin == "text_to_persona"]
    embedder = get_embedder()
    vectors = embedder.encode([p.text for p in t2p])
    source_vectors = embedder.encode([sources[int(p.source_text_id or 0)] for p in t2p])
    cosines = np.sum(vectors * source_vectors, axis=1) / (
        np.linalg.norm(vectors, axis=1) * np.linalg.norm(source_vectors, axis=1)
    )
    single = [non_person_reason(p.text) is None for p in t2p]
    relevant = [float(c) >= RELEVANCE_THRESHOLD for c in cosines]
    good = sum(s and r for s, r in zip(single, relevant, strict=True))
    stage = report.stages.get("text-to-persona")
    requests = stage.requests if stage else 0
    for name, st in report.stages.items():
        drops = dict(st.filtered) | {f"dedup {k}": v for k, v in st.deduped.items() if v}
        print(
            f"{name}: requests {st.requests}, failed {st.failed}, generated {st.generated}, "
            f"stored {st.stored}, dropped {drops}",
            file=sys.stderr,
        )
    labels = Counter(e.relation for e in edges)
    print(f"hop 1 relation labels ({len(edges)} edges): {dict(labels.most_common())}")
    print(
        f"text-to-persona: {len(t2p)} stored of {requests} requests; single person "
        f"{sum(single)}, relevant (cos >= {RELEVANCE_THRESHOLD}) {sum(relevant)}, both {good}; "
        f"mean cos {float(np.mean(cosines)) if len(t2p) else 0:.3f}"
    )
    for p, cos, ok in list(zip(t2p, cosines, single, strict=True))[: args.show]:
        source = sources[int(p.source_text_id or 0)][:90]
        print(f"  [{cos:.2f}{'' if ok else ' NOT-PERSON'}] {p.text}\n      <- {source}")
    share = good / len(t2p) if t2p else 0.0
    print(result_line("persona_quality", "share single-person and relevant", share, ">=", TARGET))


if __name__ == "__main__":
    main()
