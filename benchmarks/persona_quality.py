"""Persona quality on real texts: are Text-to-Persona personas single people, relevant to
their source, and are Persona-to-Persona relation labels real relations?

The texts are paragraphs that this project did not write: the package descriptions (README
text in each installed distribution's METADATA, this project's own excluded), picked
programmatically. Per distribution, in name order, the first paragraph of 25-120 words
that reads as prose (no code, tables, markup lines or link lists); those are shuffled with a
fixed seed and the first ``--paragraphs`` taken, so every prefix spreads over the whole
environment.

A build runs on them with the embedded model (SmolLM2-135M) in a child process
(``_persona_build.py``) whose pipeline comes from ``--code`` (default: this checkout), so
the same paragraphs, model and seed can be given to an older checkout: the code before a
fix. Text-to-Persona uses the ``read`` and ``write`` angles, then one hop of
Persona-to-Persona (2 per parent). ``--steps`` grows the build in prefixes of the
paragraphs (the store and response cache carry over), printing the figures after each, so
a run cut short still reports its largest size; a later call with the same ``--out`` and a
larger ``--paragraphs`` continues that build instead of starting again.

The judge is this checkout's code, whatever ``--code`` is, and automatic:

* single person: :func:`~personahub.build.person_check.non_person_reason` finds no group or
  thing head and :func:`~personahub.build.person_check.looks_like_person` finds a sign of a
  person (the model's own ``kind`` is not in an old checkout's output, so it is not used);
* relevant: MiniLM cosine between the persona and its source paragraph >= 0.25
  (:data:`RELEVANCE_THRESHOLD`, fixed before measuring);
* edges: the relation label mapped by
  :func:`~personahub.build.persona_to_persona.relation_label` is in the vocabulary (not
  ``other: ...``), and the share whose label maps to ``partner`` or ``teacher-student``:
  the old worked example's ``spouse`` and ``student``, which a small model copied onto
  every parent.

A pipeline that drops what the judge rejects scores high on the stored personas by
construction, so the lines also give the figures per Text-to-Persona request (stored, and
stored-and-good, per request): what the filter costs in yield.

Figure: the share of stored Text-to-Persona personas that are single people and relevant,
target >= 0.75. ``--show`` prints personas with their source for a judgement by eye.

Run: ``.venv/bin/python benchmarks/persona_quality.py --paragraphs 30 --steps 10,20
[--code /path/to/old/checkout --label before] [--out DIR] [--show 20]`` (about 40 minutes
per side on a shared 2-core machine; figures of 2026-11-27 in ``docs/personas.md``).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import result_line  # noqa: E402
from personahub.build.person_check import looks_like_person, non_person_reason  # noqa: E402
from personahub.build.persona_to_persona import relation_label  # noqa: E402
from personahub.embeddings import get_embedder  # noqa: E402

RELEVANCE_THRESHOLD = 0.25
TARGET = 0.75
# The old Persona-to-Persona example's labels, as the vocabulary maps them.
EXAMPLE_LABELS = frozenset({relation_label("spouse"), relation_label("student")})
OWN_DISTRIBUTIONS = frozenset({"persona-sandbox"})
_NOT_PROSE = re.compile(
    r"^\s*(?:[#=*|>$`:.-]|\d+\.|\[|!\[|<|\.\.|>>>|pip |python |from |import |http)", re.M
)


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


def real_paragraphs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` prose paragraphs from installed package descriptions, as (package, text)."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = (dist.metadata.get("Name") or "").lower()
        description = dist.metadata.get("Description") or dist.metadata.get_payload() or ""
        if not name or name in found or name in OWN_DISTRIBUTIONS:
            continue
        if not isinstance(description, str):
            continue
        for raw in re.split(r"\n\s*\n", description):
            text = " ".join(raw.split())
            if text and _prose(text, raw):
                found[name] = text
                break
    picked = sorted(found.items())
    random.Random(seed).shuffle(picked)
    return picked[:n]


def run_build(code: Path, paragraphs: list[tuple[str, str]], folder: Path, seed: int) -> list[dict]:
    """Build ``paragraphs`` with ``code``'s pipeline into ``folder``'s store; the dump rows."""
    source = folder / "paragraphs.json"
    source.write_text(json.dumps(paragraphs), encoding="utf-8")
    dump = folder / "dump.jsonl"
    # The child must see only the checkout under test, not this one via PYTHONPATH.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    command = [sys.executable, "-u", str(Path(__file__).with_name("_persona_build.py"))]
    command += ["--code", str(code), "--paragraphs", str(source), "--seed", str(seed)]
    command += ["--store", str(folder / "personas.db"), "--dump", str(dump)]
    subprocess.run(command, check=True, env=env, stdout=sys.stderr)
    with dump.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def _cosines(texts: list[str], sources: list[str]) -> np.ndarray:
    if not texts:
        return np.zeros(0)
    embedder = get_embedder()
    a, b = embedder.encode(texts), embedder.encode(sources)
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def single_person(text: str) -> bool:
    """The judge's person check: no group or thing head, and some sign of a person."""
    return non_person_reason(text) is None and looks_like_person(text)


def judge(rows: list[dict], requests: int, tag: str, show: int) -> float:
    """Print the figures of one dump; return the share of stored personas that are good."""
    personas = [r for r in rows if "persona" in r]
    t2p = [p for p in personas if p["origin"] == "text_to_persona"]
    p2p = [p for p in personas if p["origin"] == "persona_to_persona"]
    edges = [r for r in rows if "edge" in r]
    cosines = _cosines([p["text"] for p in t2p], [p["source"] or "" for p in t2p])
    single = [single_person(p["text"]) for p in t2p]
    relevant = [float(c) >= RELEVANCE_THRESHOLD for c in cosines]
    good = sum(s and r for s, r in zip(single, relevant, strict=True))
    n = len(t2p)
    share = good / n if n else 0.0
    mean = float(np.mean(cosines)) if n else 0.0
    print(
        f"{tag} text-to-persona: {n} stored of {requests} requests; single person {sum(single)}"
        f" ({_pct(sum(single), n)}), relevant (cos >= {RELEVANCE_THRESHOLD}) {sum(relevant)}"
        f" ({_pct(sum(relevant), n)}), both {good} ({_pct(good, n)}); mean cos {mean:.3f};"
        f" per request: stored {_ratio(n, requests)}, both {_ratio(good, requests)}"
    )
    p2p_single = sum(single_person(p["text"]) for p in p2p)
    print(
        f"{tag} hop-1 personas: {len(p2p)},"
        f" single person {p2p_single} ({_pct(p2p_single, len(p2p))})"
    )
    labels = [relation_label(e["relation"]) for e in edges]
    vocabulary = sum(not label.startswith("other:") for label in labels)
    example = sum(label in EXAMPLE_LABELS for label in labels)
    print(
        f"{tag} edges: {len(edges)};"
        f" vocabulary relation {vocabulary} ({_pct(vocabulary, len(edges))}),"
        f" old example's spouse/student {example} ({_pct(example, len(edges))});"
        f" raw labels {dict(Counter(e['relation'] for e in edges).most_common())}"
    )
    for p, cos, ok in list(zip(t2p, cosines, single, strict=True))[:show]:
        print(
            f"  [{cos:.2f}{'' if ok else ' NOT-PERSON'}] {p['text']}\n      <- {p['source'][:100]}"
        )
    return share


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "n/a"


def _ratio(part: int, whole: int) -> str:
    return f"{part / whole:.2f}" if whole else "n/a"


def _steps(spec: str | None, total: int) -> list[int]:
    sizes = sorted({min(int(s), total) for s in spec.split(",")}) if spec else []
    return [s for s in sizes if s > 0 and s < total] + [total]


def main() -> None:
    """Parse the arguments, build in steps, judge after each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paragraphs", type=int, default=40, help="real paragraphs in all")
    parser.add_argument("--steps", help="comma-separated prefix sizes judged on the way")
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout whose pipeline runs")
    parser.add_argument("--label", default="after", help="name of this side in the lines")
    parser.add_argument("--out", type=Path, help="folder kept for the store and dumps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=20, help="personas printed for judgement")
    parser.add_argument(
        "--paragraphs-from",
        type=Path,
        help="a paragraphs.json an earlier run wrote in its --out: the same texts again "
        "(the installed packages, and so the picked paragraphs, change as packages come)",
    )
    args = parser.parse_args()
    if args.paragraphs_from:
        saved = json.loads(args.paragraphs_from.read_text(encoding="utf-8"))
        paragraphs = [(name, text) for name, text in saved][: args.paragraphs]
        where = str(args.paragraphs_from)
    else:
        paragraphs, where = real_paragraphs(args.paragraphs), "installed packages"
    print(f"{len(paragraphs)} paragraphs from {where}; code {args.code}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.out or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        # Text-to-Persona requests so far, kept beside the store: a rerun with more
        # paragraphs skips the texts already built, so its own count covers only the new ones.
        counter = folder / "t2p_requests.txt"
        requests = int(counter.read_text()) if counter.exists() else 0
        share, started = 0.0, time.monotonic()
        for size in _steps(args.steps, len(paragraphs)):
            rows = run_build(args.code, paragraphs[:size], folder, args.seed)
            requests += sum(r["requests"] for r in rows if r.get("stage") == "text-to-persona")
            counter.write_text(str(requests))
            for stage in (r for r in rows if "stage" in r):
                print(f"[{args.label} n={size}] {stage}", file=sys.stderr)
            tag = f"[{args.label} n={size} {time.monotonic() - started:.0f}s]"
            last = size == len(paragraphs)
            share = judge(rows, requests, tag, args.show if last else 0)
    print(
        result_line(
            "persona_quality", f"{args.label} share single-person and relevant", share, ">=", TARGET
        )
    )


if __name__ == "__main__":
    main()
