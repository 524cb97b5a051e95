"""Child process of ``persona_quality.py``: one persona build with the pipeline of a given
checkout, dumped as JSON lines for the judge.

It runs in its own process so the code under test can be another checkout (``--code``, the
"before" of a fix) while the judge stays the current code: both sides are judged alike.
It therefore imports only what every version of the pipeline since the build's first
release offers (``BuildOptions``, ``PersonaBuilder.run``, ``PersonaStore.iter_personas`` and
``edges``), and nothing of the judge.

The store and the response cache live in ``--store``'s folder, so a second call with more
paragraphs continues the same build: registered texts are skipped, their answers come back
from the cache, and only the new texts (and their new personas' hop) reach the model.

Dump (``--dump``, rewritten each call): one ``{"stage": ...}`` line per stage of this call,
then every stored persona (id, origin, hop, text, source text) and every edge.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path


def _import_pipeline(code: Path) -> None:
    # The checkout under test goes first, ahead of the editable install of the main tree.
    sys.path.insert(0, str(code.resolve()))


def build(args: argparse.Namespace) -> list[dict[str, object]]:
    """Run the build over the paragraphs and return the dump's rows."""
    from sqlmodel import select

    from personahub.build.pipeline import BuildOptions, PersonaBuilder
    from personahub.build.sources import SourceRecord
    from personahub.llm import LLMClient, load_settings
    from personahub.rows import text_hash
    from personahub.store import PersonaStore, SourceText

    paragraphs = json.loads(Path(args.paragraphs).read_text(encoding="utf-8"))
    folder = Path(args.store).parent
    store = PersonaStore(str(args.store))
    client = LLMClient(load_settings(None, backend="local", cache_path=folder / "cache.db"))
    options = BuildOptions(hops=1, per_hop=2, chunk_size=max(1, len(paragraphs)), seed=args.seed)
    records = [
        SourceRecord(
            id=f"pkg:{name}", text=text, content_hash=text_hash(text), origin=f"pkg:{name}"
        )
        for name, text in paragraphs
    ]
    report = asyncio.run(PersonaBuilder(store, client, options).run(records))
    rows: list[dict[str, object]] = [
        {
            "stage": name,
            "requests": st.requests,
            "failed": st.failed,
            "generated": st.generated,
            "stored": st.stored,
            "filtered": dict(st.filtered),
            "deduped": {k: v for k, v in st.deduped.items() if v},
        }
        for name, st in report.stages.items()
    ]
    with store.session() as session:
        sources = {int(s.id): s.text for s in session.exec(select(SourceText))}  # type: ignore[arg-type]
    for p in store.iter_personas():
        source = sources.get(int(p.source_text_id)) if p.source_text_id is not None else None
        rows.append(
            {"persona": p.id, "origin": p.origin, "hop": p.hop, "text": p.text, "source": source}
        )
    rows.extend({"edge": [e.src_id, e.dst_id], "relation": e.relation} for e in store.edges())
    return rows


def main() -> None:
    """Parse the arguments, build, write the dump."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, required=True, help="checkout whose pipeline runs")
    parser.add_argument("--paragraphs", required=True, help="JSON list of [package, text]")
    parser.add_argument("--store", required=True, help="persona store file (kept between calls)")
    parser.add_argument("--dump", required=True, help="JSON-lines output")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    _import_pipeline(args.code)
    rows = build(args)
    with open(args.dump, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
