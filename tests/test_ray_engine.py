"""The Ray engine: MinHash and embedding dedup on Ray Data, and ``synthesize --engine ray``.

One local Ray (2 CPUs, no dashboard) is shared by the module and shut down at its end;
starting Ray takes several seconds, hence the ``slow`` mark.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from personahub.cli.app import app
from personahub.dedup import EmbeddingDeduper, MinHashDeduper
from personahub.synthesis import read_rows
from tests.support.synth import PERSONAS, synthesis_responder, write_personas

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow
runner = CliRunner()

WORDS = (
    "nurse",
    "cyclist",
    "teacher",
    "harbour",
    "night",
    "shift",
    "suburb",
    "garden",
    "chess",
    "market",
    "river",
    "clock",
    "winter",
    "engine",
    "library",
    "honey",
    "quota",
    "marathon",
    "bakery",
    "violin",
    "orchard",
    "ferry",
    "mural",
    "pottery",
    "radio",
)


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    from personahub.distributed.engine import init_ray

    init_ray(num_cpus=2)
    yield
    ray.shutdown()


def _corpus(originals: int, total: int, seed: int = 0) -> list[str]:
    """Random 14-word texts plus copies with one to three edits (swap, drop, filler)."""
    rng = random.Random(seed)
    base = [" ".join(rng.choices(WORDS, k=14)) + f" w{i} x{i}" for i in range(originals)]
    texts = list(base)
    for _ in range(total - originals):
        words = rng.choice(base).split()
        for _ in range(rng.randint(1, 3)):
            roll = rng.random()
            i = rng.randrange(len(words) - 1)
            if roll < 0.5:
                words[i], words[i + 1] = words[i + 1], words[i]
            elif roll < 0.8:
                del words[i]
            else:
                words.insert(i, rng.choice(("also", "really", "very", "often")))
        texts.append(" ".join(words))
    rng.shuffle(texts)
    return texts


def _local_minhash(texts: list[str]) -> np.ndarray:
    return np.array(MinHashDeduper().add_batch(list(range(len(texts))), texts))


def test_ray_minhash_greedy_matches_the_single_machine_deduper():
    from personahub.distributed.ray_dedup import minhash_dedup_ray

    texts = _corpus(600, 3000)
    expected = _local_minhash(texts)
    result = minhash_dedup_ray(texts, workers=2, block_rows=500)
    agreement = float((result.keep == expected).mean())
    assert agreement >= 0.995
    # The greedy rounds compute the one-by-one rule itself: the kept sets are identical.
    assert np.array_equal(result.keep, expected)
    assert result.rounds >= 2 and result.buckets > 0


def test_ray_minhash_components_merge_chains_and_equal_one_by_one_without_them():
    from personahub.distributed.ray_dedup import minhash_dedup_ray

    # Chain-free: every copy keeps the word set of its original (swaps only) or is an
    # exact repeat, so near-duplicate groups are cliques and both rules keep the first.
    rng = random.Random(1)
    base = [" ".join(rng.choices(WORDS, k=12)) + f" w{i}" for i in range(300)]
    texts = base + [" ".join(rng.sample(t.split(), k=len(t.split()))) for t in base[:150]]
    rng.shuffle(texts)
    expected = _local_minhash(texts)
    result = minhash_dedup_ray(texts, resolution="components", workers=2, block_rows=100)
    assert np.array_equal(result.keep, expected)

    # A chain A ~ B ~ C with A !~ C: one-by-one keeps A and C, components keep only A.
    a = " ".join(f"t{i}x3" for i in range(40))
    b = a + " u0 u1"  # J(A, B) = 40/42
    d = b + " v0 v1"  # J(B, D) = 42/44, J(A, D) = 40/44; estimated 120/128, 114/128 here
    chain = [a, b, d]
    assert _local_minhash(chain).tolist() == [True, False, True]
    merged = minhash_dedup_ray(chain, resolution="components", workers=1, block_rows=10)
    assert merged.keep.tolist() == [True, False, False]
    greedy = minhash_dedup_ray(chain, workers=1, block_rows=10)
    assert greedy.keep.tolist() == [True, False, True]


def test_ray_minhash_keeps_everything_of_an_empty_or_unique_input():
    from personahub.distributed.ray_dedup import minhash_dedup_ray

    assert minhash_dedup_ray([]).kept == 0
    texts = [f"persona number {i} alpha{i} beta{i} gamma{i}" for i in range(50)]
    assert minhash_dedup_ray(texts, block_rows=20).keep.all()


def test_ray_embedding_dedup_matches_single_machine_without_chains():
    from personahub.distributed.ray_embedding import embedding_dedup_ray

    rng = np.random.default_rng(0)
    base = rng.normal(size=(120, 32)).astype(np.float32)
    copies = base[rng.integers(0, 120, size=80)] + rng.normal(scale=0.01, size=(80, 32))
    vectors = np.concatenate([base, copies.astype(np.float32)])
    vectors = vectors[rng.permutation(len(vectors))]
    expected = np.array(EmbeddingDeduper(0.9).add_batch(list(range(len(vectors))), vectors))
    keep = embedding_dedup_ray(vectors, threshold=0.9, shard_rows=50, workers=2)
    assert np.array_equal(keep, expected)
    assert keep.sum() == 120


def _synthesize(tmp_path: Path, server_url: str, out: str, *extra: str) -> list[dict]:
    people = write_personas(tmp_path / "people.jsonl", PERSONAS)
    result = runner.invoke(
        app,
        [
            "synthesize",
            "--task",
            "instruction",
            "--personas",
            str(people),
            "--n",
            "15",
            "--out",
            str(tmp_path / out),
            "--base-url",
            server_url,
            "--no-cache",
            "--quiet",
            "--seed",
            "3",
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "rows in output" in result.output
    return read_rows(tmp_path / out)


def _responder_with_duplicates():
    base = synthesis_responder()

    def respond(body):
        answer = base(body)
        # Every third persona writes the same instruction: dedup must drop the later ones.
        if "p2" in str(body) or "fisherman" in str(body).lower():
            return {"prompt": "Help me plan next week around my work, please."}
        return answer

    return respond


def test_synthesize_engine_ray_gives_the_local_rows(tmp_path, fake_server):
    fake_server.configure(responder=_responder_with_duplicates())
    local = _synthesize(tmp_path, fake_server.base_url, "local.jsonl")
    distributed = _synthesize(
        tmp_path, fake_server.base_url, "ray.jsonl", "--engine", "ray", "--ray-workers", "2"
    )
    assert [r["id"] for r in distributed] == [r["id"] for r in local]
    assert [r["text"] for r in distributed] == [r["text"] for r in local]
    assert len(local) < 15  # the duplicates were dropped the same way

    # Resume: a rerun settles nothing new and writes the same file.
    again = _synthesize(tmp_path, fake_server.base_url, "ray.jsonl", "--engine", "ray")
    assert [r["id"] for r in again] == [r["id"] for r in local]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--engine", "spark"], "error: unknown engine 'spark'; choose from local, ray"),
        (["--ray-address", "auto"], "error: --ray-address needs --engine ray"),
        (["--engine", "ray", "--ray-workers", "0"], "error: --ray-workers must be at least 1"),
        (["--engine", "ray", "--ray-address", "127.0.0.1:1"], "127.0.0.1:1: cannot connect"),
        (["--engine", "ray", "--ray-address", "headnode"], "expected auto, host:port"),
    ],
)
def test_bad_engine_options_are_one_line_errors(tmp_path, extra, message):
    people = write_personas(tmp_path / "people.jsonl", PERSONAS[:2])
    result = runner.invoke(
        app,
        ["synthesize", "--task", "math", "--personas", str(people), "--out", "x.jsonl", *extra],
    )
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def _deterministic_p2p(parent: str, n: int) -> list[dict[str, str]]:
    """Related personas chosen by the parent's text, so answers do not depend on the
    order requests arrive in (the local and the Ray engine send them differently)."""
    from tests.test_pipeline import POOL, RELATIONS

    start = sum(map(ord, parent)) % len(POOL)
    return [
        {
            "relation": RELATIONS[(start + i) % len(RELATIONS)],
            "persona": POOL[(start + i) % len(POOL)],
        }
        for i in range(n)
    ]


def test_build_engine_ray_stores_what_the_local_engine_stores(tmp_path, fake_server):
    from personahub.store import PersonaStore
    from tests.test_pipeline import ScriptedModel, _corpus

    fake_server.configure(responder=ScriptedModel(p2p=_deterministic_p2p))
    path = _corpus(tmp_path, ["tides", "bread", "bike"])
    stores = {}
    for engine in ("local", "ray"):
        stores[engine] = str(tmp_path / f"{engine}.db")
        args = ["build", str(path), "--text-field", "body", "--store", stores[engine]]
        args += ["--hops", "2", "--per-hop", "2", "--base-url", fake_server.base_url]
        args += ["--no-cache", "--quiet", "--engine", engine, "--ray-workers", "2"]
        result = runner.invoke(app, args, env={"OPENAI_API_KEY": "sk-test"})
        assert result.exit_code == 0, result.output

    def contents(db: str) -> tuple[list, int]:
        store = PersonaStore(db)
        rows = sorted((p.text, p.origin, p.hop, p.angle) for p in store.personas())
        return rows, len(store.edges())

    local, distributed = contents(stores["local"]), contents(stores["ray"])
    assert local[0] and local[1] > 0
    assert distributed == local


def test_dedup_engine_ray_deletes_what_the_local_engine_deletes(tmp_path):
    from personahub.store import PersonaIn, PersonaStore

    rng = random.Random(7)
    base = [" ".join(rng.sample(WORDS, 10)) for _ in range(60)]
    texts = base + [" ".join(t.split()[1:]) + " also" for t in base[:25]] + base[:5]
    remaining = {}
    for engine in ("local", "ray"):
        db = str(tmp_path / f"{engine}.db")
        PersonaStore(db).add_personas([PersonaIn(text=t) for t in texts])
        result = runner.invoke(
            app, ["dedup", "--store", db, "--engine", engine, "--ray-workers", "2"]
        )
        assert result.exit_code == 0, result.output
        remaining[engine] = sorted(p.text for p in PersonaStore(db).personas())
    assert remaining["ray"] == remaining["local"]
    assert len(remaining["local"]) < len(set(texts))
