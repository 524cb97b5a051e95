"""Persisted persona vectors: computed once, reused, kept in step, never mixed across
embedders; on SQLite and PostgreSQL (``db_url``).

A counting bag-of-words embedder stands in for MiniLM, so the tests are fast and can say
exactly how many texts were encoded.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import numpy as np
import pytest
import typer
from sqlalchemy import text as sql
from typer.testing import CliRunner

from personahub.cli.store import register
from personahub.dedup import dedup_personas
from personahub.store import PersonaFilter, PersonaStore, StoredVectors, similar_personas


class CountingEmbedder:
    """Hashed bag of words (word order does not matter), counting every text encoded."""

    def __init__(self, dim: int = 64, name: str = "bag") -> None:
        self.dim = dim
        self.id = f"{name}-{dim}"
        self.calls = 0

    def encode(self, texts: list[str], batch_size: int = 64, **_: object) -> np.ndarray:
        self.calls += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.sha256(word.encode()).digest()
                out[row, int.from_bytes(digest[:4], "little") % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms


TEXTS = [
    "A nurse who commutes by bike through the rural county.",
    "A retired sailor who restores old wooden boats.",
    "A marine biology student who loves the sea.",
    "A baker who rises early in a small village.",
    "A rural nurse who commutes by bike through the county.",  # same words as the first
    "A software engineer who builds compilers at night.",
]


@pytest.fixture
def store(db_url: str) -> Iterator[PersonaStore]:
    opened = PersonaStore(db_url)
    opened.add_personas({"text": t} for t in TEXTS)
    yield opened
    opened.close()


def test_fill_is_resumable_and_computes_each_vector_once(store: PersonaStore) -> None:
    embedder = CountingEmbedder()
    vectors = StoredVectors(store, embedder)
    assert vectors.missing() == len(TEXTS)
    assert vectors.fill(batch_size=4) == len(TEXTS)
    assert embedder.calls == len(TEXTS) and vectors.missing() == 0
    assert vectors.fill() == 0 and embedder.calls == len(TEXTS)
    ids, rows = next(vectors.scan())
    assert ids.tolist() == sorted(ids.tolist()) and rows.shape == (len(TEXTS), 64)
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    assert store.stats()["vectors_by_embedder"] == {embedder.id: len(TEXTS)}


def test_second_dedup_encodes_nothing(store: PersonaStore) -> None:
    embedder = CountingEmbedder()
    first = dedup_personas(store, stages=["embedding"], embedder=embedder, dry_run=True)
    assert first.dropped == {"embedding": 1} and embedder.calls == len(TEXTS)
    second = dedup_personas(store, stages=["embedding"], embedder=embedder, dry_run=True)
    assert second.dropped == first.dropped and embedder.calls == len(TEXTS)
    # The reports say where the vectors came from.
    assert (first.vectors_computed, first.vectors_read) == (len(TEXTS), 0)
    assert (second.vectors_computed, second.vectors_read) == (0, len(TEXTS))


def test_inserts_and_deletes_keep_vectors_in_step(store: PersonaStore) -> None:
    embedder = CountingEmbedder()
    vectors = StoredVectors(store, embedder)
    vectors.fill()
    added = store.add_personas([{"text": "A beekeeper who sells honey at the market."}])
    assert vectors.missing() == 1
    assert vectors.fill() == 1 and embedder.calls == len(TEXTS) + 1
    first_id = store.personas()[0].id
    assert store.delete_personas([first_id, added.ids[0]]) == 2
    assert vectors.count() == len(TEXTS) - 1 and vectors.missing() == 0
    assert first_id not in vectors.get([first_id])


def test_changed_embedder_recomputes_and_never_mixes(store: PersonaStore) -> None:
    old, new = CountingEmbedder(name="old"), CountingEmbedder(dim=32, name="new")
    StoredVectors(store, old).fill()
    fresh = StoredVectors(store, new)
    assert fresh.missing() == len(TEXTS)
    hits = list(similar_personas(store, PersonaFilter(similar_to="a rural nurse", top_k=2), new))
    assert new.calls == len(TEXTS) + 1  # every persona once, then the query
    assert all(len(v) == 32 for v in fresh.get([p.id for p, _ in hits]).values())
    assert store.stats()["vectors_by_embedder"] == {old.id: len(TEXTS), new.id: len(TEXTS)}
    assert fresh.delete_other_embedders() == len(TEXTS)
    assert StoredVectors(store, old).missing() == len(TEXTS)


def test_similar_to_ranks_with_scores_and_reuses_vectors(store: PersonaStore) -> None:
    embedder = CountingEmbedder()
    flt = PersonaFilter(similar_to="rural nurse bike county", min_similarity=0.1, top_k=2)
    hits = list(similar_personas(store, flt, embedder))
    assert [p.text for p, _ in hits] == [TEXTS[0], TEXTS[4]]  # equal scores: id order
    assert hits[0][1] == pytest.approx(hits[1][1]) and hits[0][1] > 0.5
    calls = embedder.calls
    again = store.personas(flt, embedder_factory=lambda: embedder)
    assert [p.text for p in again] == [TEXTS[0], TEXTS[4]]
    assert embedder.calls == calls + 1  # only the query
    # The other criteria still apply, before top_k; without top_k, id order.
    narrowed = PersonaFilter(
        similar_to="rural nurse bike county", min_similarity=0.1, contains_any=["rural nurse"]
    )
    assert [p.text for p in store.personas(narrowed, embedder_factory=lambda: embedder)] == [
        TEXTS[4]
    ]
    everything = PersonaFilter(similar_to="nurse", min_similarity=-1.0)
    assert len(store.personas(everything, embedder_factory=lambda: embedder)) == len(TEXTS)


def test_embed_command_and_stats_coverage(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    embedder = CountingEmbedder()
    # The commands use the packaged model's id, with this embedder doing the encoding.
    monkeypatch.setattr("personahub.embeddings.get_embedder", lambda: embedder)
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    PersonaStore(db_url).add_personas({"text": t} for t in TEXTS)
    result = runner.invoke(app, ["stats", "--store", db_url])
    assert result.exit_code == 0 and "0 of 6" in result.output, result.output
    result = runner.invoke(app, ["embed", "--store", db_url])
    assert result.exit_code == 0 and "embedded 6" in result.output, result.output
    result = runner.invoke(app, ["embed", "--store", db_url])
    assert result.exit_code == 0 and "embedded 0" in result.output and embedder.calls == 6
    # dedup reads what embed stored, and says so.
    result = runner.invoke(app, ["dedup", "--store", db_url, "--stages", "embedding", "--dry-run"])
    assert result.exit_code == 0 and embedder.calls == 6, result.output
    assert "0 computed and stored, 6 read from the store" in result.output, result.output
    result = runner.invoke(app, ["stats", "--store", db_url])
    assert "6 of 6" in result.output, result.output
    result = runner.invoke(
        app, ["sample", "--store", db_url, "--similar-to", "rural nurse bike", "-n", "2"]
    )
    assert result.exit_code == 0 and "similarity" in result.output, result.output
    assert "rural" in result.output and embedder.calls == 7


def _top(store: PersonaStore, embedder: CountingEmbedder, query: str, k: int = 3) -> list[str]:
    flt = PersonaFilter(similar_to=query, min_similarity=-1.0, top_k=k)
    return [p.text for p, _ in similar_personas(store, flt, embedder)]


def test_vector_file_is_reused_and_never_stale(
    store: PersonaStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedder = CountingEmbedder()
    assert _top(store, embedder, "rural nurse bike county", 2) == [TEXTS[0], TEXTS[4]]
    # Later searches map the vector file: no vector is read from the table.
    with monkeypatch.context() as patched:
        patched.setattr(StoredVectors, "scan", lambda *_a, **_k: pytest.fail("table read"))
        assert _top(store, embedder, "rural nurse bike county", 2) == [TEXTS[0], TEXTS[4]]
    # An insert: the new persona is embedded and found at once.
    store.add_personas([{"text": "A beekeeper who sells honey at the rural market."}])
    assert _top(store, embedder, "beekeeper honey market", 1) == [
        "A beekeeper who sells honey at the rural market."
    ]
    # A delete (the vector goes by the persona's deletion): never found again.
    first = store.personas()[0]
    store.delete_personas([first.id])
    assert TEXTS[0] not in _top(store, embedder, "rural nurse bike county", 6)
    # Changes behind the store's back (another process, raw SQL) are seen too: a vector
    # replaced, and a persona deleted with its vector going by the foreign key's cascade.
    second, third = store.personas()[:2]
    zebra = embedder.encode(["zebra zebra zebra"])[0].tobytes()
    with store.engine.begin() as connection:
        connection.execute(
            sql("UPDATE persona_vector SET vector = :v WHERE persona_id = :i"),
            {"v": zebra, "i": second.id},
        )
    assert _top(store, embedder, "zebra", 1) == [second.text]
    with store.engine.begin() as connection:
        connection.execute(sql("DELETE FROM persona WHERE id = :i"), {"i": second.id})
    assert _top(store, embedder, "zebra", 1) != [second.text]
    assert third.text in _top(store, embedder, third.text, 1)
    assert StoredVectors(store, embedder).missing() == 0


def test_vector_files_never_mix_embedders(store: PersonaStore) -> None:
    wide, narrow = CountingEmbedder(name="wide"), CountingEmbedder(dim=16, name="narrow")
    assert _top(store, wide, "rural nurse bike county", 2) == [TEXTS[0], TEXTS[4]]
    narrow_hits = list(
        similar_personas(store, PersonaFilter(similar_to="sailor boats", top_k=1), narrow)
    )
    assert [p.text for p, _ in narrow_hits] == [TEXTS[1]]
    # Each embedder searches its own vectors, from its own file, at its own width.
    calls = wide.calls, narrow.calls
    assert _top(store, wide, "rural nurse bike county", 2) == [TEXTS[0], TEXTS[4]]
    assert _top(store, narrow, "sailor boats", 1) == [TEXTS[1]]
    assert (wide.calls, narrow.calls) == (calls[0] + 1, calls[1] + 1)


def test_vector_file_sits_next_to_a_sqlite_store(tmp_path) -> None:
    store = PersonaStore(tmp_path / "people.db")
    store.add_personas({"text": t} for t in TEXTS)
    _top(store, CountingEmbedder(), "nurse")
    files = sorted(p.name for p in (tmp_path / "people.db-vectors").iterdir())
    assert len(files) == 2 and files[0].endswith(".ids.npy") and files[1].endswith(".rows.npy")
    store.add_personas([{"text": "A beekeeper who sells honey."}])
    _top(store, CountingEmbedder(), "nurse")  # a new token: the old files are replaced
    assert len(list((tmp_path / "people.db-vectors").iterdir())) == 2
    store.close()


@pytest.mark.slow
def test_onnx_embedder_gives_the_torch_vectors() -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from personahub.embeddings import get_embedder
    from personahub.embeddings_onnx import OnnxEmbedder

    fast, reference = get_embedder(), get_embedder(backend="torch")
    assert isinstance(fast, OnnxEmbedder) and fast.id == reference.id
    texts = [*TEXTS, "a " * 400 + "very long persona, truncated like sentence-transformers does"]
    assert np.abs(fast.encode(texts, batch_size=3) - reference.encode(texts)).max() < 1e-5
    assert fast.encode([]).shape == (0, reference.dim)


class _FakeSession:
    """Stands in for an ONNX Runtime session: one fixed unit row per text."""

    def __init__(self, dim: int) -> None:
        self.dim, self.calls = dim, 0

    def run(self, _outputs: object, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        rows = len(feeds["input_ids"])
        self.calls += rows
        return [np.tile(np.eye(1, self.dim, dtype=np.float32), (rows, 1))]


def test_int8_vectors_have_their_own_embedder_id(store: PersonaStore, tmp_path) -> None:
    # The int8 model's vectors differ from the float model's: stored under one id, they
    # must never be read for the other.
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    from personahub.embeddings_onnx import OnnxEmbedder

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    tokenizer = Tokenizer(WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    floats, ints = _FakeSession(8), _FakeSession(8)
    fp32 = OnnxEmbedder(floats, tokenizer, folder, 8)
    int8 = OnnxEmbedder(ints, tokenizer, folder, 8, quantized=True)
    assert int8.id == fp32.id + "-int8"
    StoredVectors(store, int8).fill()
    assert ints.calls == len(TEXTS) and StoredVectors(store, fp32).missing() == len(TEXTS)
    StoredVectors(store, fp32).fill()
    assert floats.calls == len(TEXTS)
    assert store.stats()["vectors_by_embedder"] == {fp32.id: len(TEXTS), int8.id: len(TEXTS)}


def test_int8_backend_never_falls_back_to_float(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from personahub import embeddings, embeddings_onnx

    monkeypatch.setattr(embeddings_onnx, "onnx_embedder", lambda path, quantized=False: None)
    with pytest.raises(RuntimeError, match="int8"):
        embeddings.get_embedder(tmp_path, backend="int8")


@pytest.mark.slow
def test_int8_onnx_embedder_is_close_but_separate() -> None:
    pytest.importorskip("onnxruntime")
    from personahub.embeddings import get_embedder

    fast, int8 = get_embedder(), get_embedder(backend="int8")
    assert int8.id == fast.id + "-int8"
    cosines = np.sum(fast.encode(TEXTS) * int8.encode(TEXTS), axis=1)
    assert cosines.min() > 0.95


def test_dedup_confident_band_option(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from personahub import dedup
    from personahub.dedup.two_stage import CONFIDENT_THRESHOLD

    asked: list[float | None] = []

    def fake_dedup(source: object, **options: object) -> dedup.DedupReport:
        asked.append(options["confident_threshold"])  # type: ignore[arg-type]
        return dedup.DedupReport()

    monkeypatch.setattr(dedup, "dedup_personas", fake_dedup)
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    command = ["dedup", "--store", db_url, "--two-stage", "--dry-run"]
    for extra in (
        [],
        ["--confident-band", "off"],
        ["--confident-band", "calibrated"],
        ["--confident-band", "0.99"],
    ):
        result = runner.invoke(app, [*command, *extra])
        assert result.exit_code == 0, result.output
    assert asked == [None, None, CONFIDENT_THRESHOLD, 0.99]
    result = runner.invoke(app, [*command, "--confident-band", "1.5"])
    assert result.exit_code == 2 and "--confident-band must be" in result.output
