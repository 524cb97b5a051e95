"""Persona store: adding, exact dedup, import/export round trips, the carver, the CLI.

Tests taking ``store`` (and the CLI test) run on SQLite and on PostgreSQL (``db_url``).
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from personahub.cli.store import register
from personahub.embeddings import Embedder, get_embedder
from personahub.store import (
    PersonaFilter,
    PersonaIn,
    PersonaStore,
    StoreError,
    export_file,
    import_file,
)

TOOL_JSONL = Path(__file__).resolve().parents[1].parent / "shared/data/personahub/tool.jsonl"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return get_embedder()


@pytest.fixture
def store(db_url: str) -> Iterator[PersonaStore]:
    opened = PersonaStore(db_url)
    yield opened
    opened.close()


def _people() -> list[PersonaIn]:
    return [
        PersonaIn(
            text="A nurse who commutes by bike through the city.",
            attributes={"occupation": "nurse", "interests": ["cycling", "health"]},
            external_id="p1",
        ),
        PersonaIn(
            text="A retired sailor who restores wooden boats.",
            attributes={"occupation": "retired", "location": "Brest"},
            external_id="p2",
        ),
        PersonaIn(
            text="A student of marine biology who loves the sea.",
            origin="persona_to_persona",
            hop=1,
            angle="like",
            granularity="fine",
            model="smollm2",
            attributes={"occupation": "student", "age_band": "18-24"},
            external_id="p3",
        ),
        PersonaIn(
            text="Ein Bäcker aus München, der früh aufsteht.",
            origin="text_to_persona",
            attributes={"occupation": "baker", "location": "München"},
            external_id="p4",
        ),
    ]


def _filled(store: PersonaStore) -> list[int]:
    report = store.add_personas(_people())
    ids = report.ids
    store.add_edges(
        [
            {"src_id": ids[0], "dst_id": ids[1], "relation": "neighbour", "strength": 0.5},
            {"src_id": ids[2], "dst_id": ids[1], "relation": "mentee"},
        ]
    )
    return ids


def test_add_skips_exact_duplicates_and_returns_ids(store: PersonaStore) -> None:
    first = store.add_personas(_people())
    assert (first.added, first.duplicates) == (4, 0)
    again = store.add_personas(
        [
            {"text": "a  NURSE who commutes by bike through the city."},
            {"text": "Someone new."},
            {"text": "someone   new."},
        ]
    )
    assert (again.added, again.duplicates) == (1, 2)
    assert again.ids[0] == first.ids[0] and again.ids[1] == again.ids[2]
    assert store.count() == 5
    persona = store.get(first.ids[2])
    assert persona is not None and persona.hop == 1 and persona.attributes["age_band"] == "18-24"


def test_add_rejects_invalid_items(store: PersonaStore) -> None:
    with pytest.raises(StoreError, match="persona #1 invalid"):
        store.add_personas([{"text": "fine"}, {"text": "x", "origin": "made_up"}])
    with pytest.raises(StoreError, match="unknown persona id"):
        store.add_edges([{"src_id": 1, "dst_id": 999, "relation": "friend"}])


def test_edges_stats_and_delete(store: PersonaStore) -> None:
    ids = _filled(store)
    assert store.add_edges([{"src_id": ids[0], "dst_id": ids[1], "relation": "neighbour"}]) == 0
    child = store.add_personas([PersonaIn(text="Child persona.", parent_id=ids[1], hop=1)]).ids[0]
    stats = store.stats()
    assert stats["personas"] == 5 and stats["edges"] == 2
    assert stats["by_origin"] == {"imported": 3, "persona_to_persona": 1, "text_to_persona": 1}
    assert stats["by_hop"] == {"0": 3, "1": 2}
    assert stats["edges_by_relation"] == {"mentee": 1, "neighbour": 1}
    assert {(e.src_id, e.dst_id) for e in store.edges({ids[0], ids[1]})} == {(ids[0], ids[1])}
    assert store.delete_personas([ids[1]]) == 1
    assert store.edges() == []
    remaining = store.get(child)
    assert remaining is not None and remaining.parent_id is None


def test_source_text_is_idempotent(store: PersonaStore) -> None:
    first = store.add_source_text("Some   input text.", "docs.jsonl:1")
    assert store.add_source_text("some input text.", "other.jsonl:9") == first
    assert store.stats()["source_texts"] == 1


@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
def test_export_import_round_trip(store: PersonaStore, tmp_path: Path, suffix: str) -> None:
    _filled(store)
    out, edges = tmp_path / f"out.{suffix}", tmp_path / "edges.jsonl"
    assert export_file(store, out, edges_path=edges) == 4
    copy = PersonaStore(tmp_path / "copy.db")
    report = import_file(copy, out, edges_path=edges)
    assert (report.read, report.added, report.malformed, report.edges_added) == (4, 4, 0, 2)

    def snapshot(s: PersonaStore) -> list[tuple]:
        return [
            (p.text, p.origin, p.hop, p.angle, p.granularity, p.model, p.external_id, p.attributes)
            for p in s.iter_personas()
        ]

    assert snapshot(copy) == snapshot(store)
    by_ext = {p.id: p.external_id for p in copy.iter_personas()}
    assert {(by_ext[e.src_id], by_ext[e.dst_id], e.relation, e.strength) for e in copy.edges()} == {
        ("p1", "p2", "neighbour", 0.5),
        ("p3", "p2", "mentee", 1.0),
    }


@pytest.mark.skipif(not TOOL_JSONL.exists(), reason="shared Persona Hub sample not present")
def test_import_persona_hub_tool_jsonl(store: PersonaStore) -> None:
    distinct = set()
    with TOOL_JSONL.open() as handle:
        for line in handle:
            distinct.add(" ".join(json.loads(line)["input persona"].lower().split()))
    report = import_file(store, TOOL_JSONL)
    assert report.read == 5000 and report.malformed == 0
    assert report.added == len(distinct) == store.count()
    assert report.duplicates == 5000 - len(distinct)
    # The other columns of a release row are kept as attributes (issue 18 item 9).
    with TOOL_JSONL.open() as handle:
        first = json.loads(handle.readline())
    persona = store.personas(limit=1)[0]
    assert persona.origin == "imported" and persona.text == first["input persona"]
    assert persona.attributes == {
        "synthesized text": first["synthesized text"],
        "description": "tool development",
    }
    again = import_file(store, TOOL_JSONL)
    assert (again.added, again.duplicates) == (0, 5000)


def test_release_formats_and_duplicates(store: PersonaStore, tmp_path: Path) -> None:
    path = tmp_path / "release.jsonl"
    rows = [
        {"persona": "A chemist who studies soil."},
        {
            "input persona": "A chemist who studies soil.",
            "synthesized text": "{}",
            "description": "x",
        },
        {"input persona": "A pilot.", "synthesized text": '"{...}"', "description": "tool"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    report = import_file(store, path)
    assert (report.read, report.added, report.duplicates) == (3, 2, 1)
    # The repeated persona keeps its first row's (no) attributes; the release row's other
    # columns become attributes.
    assert {p.text: p.attributes for p in store.iter_personas()} == {
        "A chemist who studies soil.": {},
        "A pilot.": {"synthesized text": '"{...}"', "description": "tool"},
    }


def test_malformed_rows_are_reported_not_fatal(store: PersonaStore, tmp_path: Path) -> None:
    path = tmp_path / "messy.jsonl"
    path.write_text(
        '{"persona": "Good one."}\n'
        "{broken json\n"
        '{"persona": ""}\n'
        '["not", "an", "object"]\n'
        '{"persona": {"nested": 1}}\n'
        "\n"
        '{"persona": "Good two.", "city": "Lyon", "tags": ["a", "b"], "meta": {"x": 1}}\n'
    )
    report = import_file(store, path)
    assert (report.read, report.added, report.malformed) == (6, 2, 4)
    assert [line for line, _ in report.malformed_examples] == [2, 3, 4, 5]
    assert "bad JSON" in report.malformed_examples[0][1]
    two = store.personas(PersonaFilter(contains_any=["two"]))[0]
    assert two.attributes == {"city": "Lyon", "tags": ["a", "b"]}


def test_import_csv_with_text_field_and_errors(store: PersonaStore, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text('id,bio,city\ns001,"A baker, early riser",Lyon\ns002,,Paris\n')
    with pytest.raises(StoreError) as err:
        import_file(store, path, text_field="about")
    assert "'about'" in str(err.value) and "id, bio, city" in str(err.value)
    with pytest.raises(StoreError, match="columns: id, bio, city"):
        import_file(store, path)
    report = import_file(store, path, text_field="bio")
    assert (report.added, report.malformed) == (1, 1)
    (persona,) = store.personas()
    assert persona.external_id == "s001" and persona.attributes == {"city": "Lyon"}
    with pytest.raises(StoreError, match="file not found"):
        import_file(store, tmp_path / "absent.jsonl")


def test_edges_file_with_unknown_reference(store: PersonaStore, tmp_path: Path) -> None:
    people = tmp_path / "p.jsonl"
    people.write_text('{"id": "a", "text": "Alice."}\n{"id": "b", "text": "Bob."}\n')
    edges = tmp_path / "e.jsonl"
    edges.write_text(
        '{"src": "a", "dst": "b", "relation": "friend", "strength": 0.8}\n'
        '{"src": "a", "dst": "zz", "relation": "friend"}\n'
        '{"src": "b"}\n'
    )
    report = import_file(store, people, edges_path=edges)
    assert (report.edges_read, report.edges_added, report.edges_malformed) == (3, 1, 2)
    assert "'zz'" in report.edges_malformed_examples[0][1]


def test_unreachable_or_invalid_store_is_one_line() -> None:
    for url in ("nosuchdialect://host/db", "sqlite:////proc/no/such/dir/x.db"):
        with pytest.raises(StoreError) as err:
            PersonaStore(url)
        assert "\n" not in str(err.value)


def test_filters(store: PersonaStore) -> None:
    _filled(store)

    def texts(**kwargs: object) -> list[str]:
        return [p.text.split()[1] for p in store.personas(PersonaFilter(**kwargs))]

    assert texts(contains_any=["SEA", "boats"]) == ["retired", "student"]
    assert texts(contains_any=["münchen"]) == ["Bäcker"]
    assert texts(regex=r"\bbi(ke|ology)\b") == ["nurse", "student"]
    assert texts(origin=["persona_to_persona", "text_to_persona"]) == ["student", "Bäcker"]
    assert texts(origin="imported", max_hop=0) == ["nurse", "retired"]
    assert texts(min_hop=1) == ["student"]
    assert texts(attributes={"occupation": "Nurse"}) == ["nurse"]
    assert texts(attributes={"occupation": ["baker", "student"]}) == ["student", "Bäcker"]
    assert texts(attributes={"interests": "cycling"}) == ["nurse"]
    assert texts(attributes={"location": "Brest", "occupation": "nurse"}) == []
    assert store.count(PersonaFilter(contains_any=["a"], max_hop=0)) == 3


def test_sample_is_seeded(store: PersonaStore) -> None:
    store.add_personas({"text": f"Persona number {i}."} for i in range(300))
    pick = PersonaFilter(sample=20, seed=3)
    first = [p.id for p in store.iter_personas(pick, batch_size=37)]
    assert len(first) == 20 and first == sorted(first)
    assert first == [p.id for p in store.iter_personas(pick)]
    assert first != [p.id for p in store.iter_personas(PersonaFilter(sample=20, seed=4))]
    assert len(store.personas(PersonaFilter(sample=500))) == 300


def test_filter_validation() -> None:
    with pytest.raises(ValueError, match="invalid regex"):
        PersonaFilter(regex="(")
    with pytest.raises(ValueError, match="top_k needs similar_to"):
        PersonaFilter(top_k=3)
    with pytest.raises(ValueError, match="unknown origin"):
        PersonaFilter(origin=["alien"])


@pytest.mark.slow
def test_similarity_filter(store: PersonaStore, embedder: Embedder) -> None:
    _filled(store)
    near = PersonaFilter(similar_to="a sailor who fixes old wooden boats", min_similarity=0.5)
    found = store.personas(near, embedder_factory=lambda: embedder)
    assert [p.external_id for p in found] == ["p2"]
    top = PersonaFilter(similar_to="someone who loves the ocean", min_similarity=-1.0, top_k=2)
    ranked = store.personas(top, embedder_factory=lambda: embedder)
    assert len(ranked) == 2 and ranked[0].external_id == "p3"


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_cli_commands(tmp_path: Path, db_url: str) -> None:
    runner, app, db = CliRunner(), _cli(), db_url
    data = tmp_path / "people.jsonl"
    data.write_text(
        "".join(
            json.dumps({"persona": f"A gardener number {i} in Lyon."}) + "\n" for i in range(30)
        )
        + "{bad\n"
    )
    result = runner.invoke(app, ["import", str(data), "--store", db])
    assert result.exit_code == 0, result.output
    assert "30" in result.output and "malformed" in result.output
    result = runner.invoke(app, ["stats", "--store", db])
    assert result.exit_code == 0 and "imported" in result.output
    result = runner.invoke(
        app, ["sample", "--store", db, "-n", "3", "--json", "--contains", "lyon"]
    )
    assert result.exit_code == 0
    assert len([json.loads(line) for line in result.output.splitlines()]) == 3
    out = tmp_path / "out.parquet"
    result = runner.invoke(app, ["export", str(out), "--store", db, "--regex", "number [12]\\b"])
    assert result.exit_code == 0 and out.exists() and "wrote 2 personas" in result.output
    result = runner.invoke(app, ["dedup", "--store", db, "--stages", "minhash", "--dry-run"])
    assert result.exit_code == 0 and "minhash" in result.output


def test_cli_errors_are_one_red_line(tmp_path: Path) -> None:
    runner, app = CliRunner(), _cli()
    db = str(tmp_path / "cli.db")
    data = tmp_path / "p.jsonl"
    data.write_text(json.dumps({"name": "x", "bio": "y"}) + "\n")
    for args in (
        ["import", str(tmp_path / "absent.jsonl"), "--store", db],
        ["import", str(data), "--store", db, "--text-field", "about"],
        ["stats", "--store", "nosuchdialect://x"],
        ["sample", "--store", db, "--regex", "("],
        ["dedup", "--store", db, "--stages", "fuzzy"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "error:" in result.output and "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_concurrent_writers_store_each_persona_once(db_url: str) -> None:
    # Pipeline workers filling one store: overlapping personas, in different orders.
    texts = [f"A tram driver number {i} who reads at night." for i in range(600)]
    reports: list[int] = []
    failures: list[BaseException] = []

    def write(seed: int) -> None:
        mine = texts[:]
        random.Random(seed).shuffle(mine)
        store = PersonaStore(db_url)
        try:
            report = store.add_personas(({"text": t} for t in mine), batch_size=100)
            reports.append(report.added)
            store.add_edges(
                {"src_id": a, "dst_id": b, "relation": "neighbour"}
                for a, b in zip(report.ids, report.ids[1:], strict=False)
                if a < b
            )
        except BaseException as exc:
            failures.append(exc)
        finally:
            store.close()

    PersonaStore(db_url).close()
    threads = [threading.Thread(target=write, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sum(reports) == 600
    store = PersonaStore(db_url)
    try:
        assert store.count() == 600
        edges = [(e.src_id, e.dst_id) for e in store.edges()]
        assert len(edges) == len(set(edges))
    finally:
        store.close()
