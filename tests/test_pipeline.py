"""The persona build pipeline against the fixture OpenAI server, through the real SDK.

A scripted responder plays the model: Text-to-Persona answers come from a table keyed by
(text, angle), found by rendering our own prompts; Persona-to-Persona answers come from a
pool of mutually distinct personas. Dedup runs with the real MiniLM embedder.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
from pydantic import ValidationError
from sqlmodel import select
from typer.testing import CliRunner

from personahub.build.options import BuildOptions
from personahub.build.person_check import non_person_reason
from personahub.build.persona_to_persona import (
    RELATIONS as VOCABULARY,
)
from personahub.build.persona_to_persona import (
    normalise_relation,
    p2p_messages,
    related_schema,
    relation_label,
)
from personahub.build.pipeline import PersonaBuilder
from personahub.build.quality import REASONS, QualityFilter, looks_like_person
from personahub.build.report import BuildReport
from personahub.build.sources import read_texts
from personahub.build.text_to_persona import (
    ANGLES,
    GRANULARITIES,
    PersonaAnswer,
    example_context,
    examples,
    t2p_messages,
    text_to_persona,
)
from personahub.cli.build import register
from personahub.embeddings import Embedder, get_embedder
from personahub.llm import LLMClient, LLMSettings
from personahub.llm.grammar import bounded_integers_as_enums, grammar_schema
from personahub.store import PersonaStore, SourceText
from tests.support.fake_openai import FakeOpenAIServer

TEXTS = {
    "tides": "Tide tables for the northern harbour: high water at 06:12 and 18:40 on Saturday.",
    "bread": "Feed the sourdough starter twice a day and use rye flour for a tangier loaf.",
    "bike": "The council approved a protected bike lane on Elm Street, opening in May.",
    "earnings": "Quarterly earnings beat expectations as cloud revenue grew 28 percent.",
    "choir": "The community choir seeks tenors for its winter concert at St Mary's church.",
}
T2P = {
    ("tides", "read"): "A lobster fisherman who plans his mornings around the tides",
    ("tides", "write"): "A harbour master who posts weekly notices for boat owners",
    ("bread", "read"): "A home baker experimenting with rye loaves on weekends",
    ("bread", "write"): "A bakery owner who teaches bread classes to beginners",
    ("bike", "read"): "A commuter who cycles to the hospital for night shifts",
    ("bike", "write"): "A city hall press officer covering transport decisions",
    ("earnings", "read"): "A retail investor tracking technology stocks in her spare time",
    ("earnings", "write"): "A financial journalist who reports on cloud software companies",
    ("choir", "read"): "A retired music teacher who sings tenor in church choirs",
    ("choir", "write"): "A volunteer choir secretary who organises seasonal concerts",
}
_POOL_ROWS = """
beekeeper, Reykjavik, orchids
glassblower, Lagos, vintage radios
ferry captain, Osaka, chess problems
tax auditor, Lima, sea kayaking
puppeteer, Tbilisi, jazz vinyl
welder, Perth, mountain birds
midwife, Quebec, sourdough
cartographer, Bergen, old maps
sommelier, Cusco, rock climbing
locksmith, Zanzibar, origami
stonemason, Tromso, tango
translator, Hanoi, comic books
zookeeper, Porto, fly fishing
choreographer, Oaxaca, stargazing
blacksmith, Riga, pottery
radiologist, Dakar, marathons
luthier, Hobart, board games
surveyor, Kyoto, calligraphy
perfumer, Tallinn, beekeeping lore
saddler, Marrakesh, salsa dancing
archivist, Valparaiso, model trains
falconer, Gdansk, cave diving
brewer, Cebu, folk songs
goldsmith, Bilbao, street photography
oceanographer, Nairobi, kite surfing
upholsterer, Salta, bonsai
actuary, Aarhus, crossword puzzles
taxidermist, Izmir, ice hockey
cooper, Kandy, opera
clockmaker, Trieste, urban sketching
"""


def _pool(rows: str) -> list[str]:
    people = [line.split(", ") for line in rows.strip().splitlines()]
    return [f"A {job} from {city} who loves {hobby}" for job, city, hobby in people]


# Thirty personas, pairwise cosine < 0.7 under MiniLM: none is a near-duplicate of another.
POOL = _pool(_POOL_ROWS)
# Labels the answer schema's enum takes (issue 18 item 5: no free-text relation).
RELATIONS = ["colleague", "mentor-mentee", "patient-caregiver", "neighbour", "friend"]


_PARENT_LINE = "Here is a person: "


def _parent(prompt: str) -> str:
    return json.loads(prompt.split(_PARENT_LINE, 1)[1].split("\n", 1)[0])


class ScriptedModel:
    """Plays the model for the fake server (thread-safe: the server answers concurrently).

    Args:
        t2p: (text key, angle) -> persona, or a callable (text, angle) -> content.
        p2p: Callable (parent persona, n) -> list of {"relation", "persona"}; by default
            the next unused personas of :data:`POOL`.
    """

    def __init__(
        self,
        t2p: dict[tuple[str, str], str] | None = None,
        p2p: Callable[[str, int], Any] | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        self.t2p = T2P if t2p is None else t2p
        self.p2p = p2p
        self.attributes = attributes or {}
        self._lock = threading.Lock()
        self._next = 0
        self.calls: Counter[str] = Counter()
        self._prompts = {
            t2p_messages(text, angle, gran)[-1]["content"]: (key, angle)
            for key, text in TEXTS.items()
            for angle in ANGLES
            for gran in GRANULARITIES
        }

    def __call__(self, body: dict[str, Any]) -> Any:
        name = body["response_format"]["json_schema"]["name"]
        # The last question we asked: a worked example comes first, a re-ask may follow.
        asked = [m["content"] for m in body["messages"] if m["role"] == "user"]
        with self._lock:
            self.calls[name] += 1
        if name == "PersonaAnswer":
            key, angle = self._prompts[next(p for p in reversed(asked) if p in self._prompts)]
            persona = self.t2p.get((key, angle))
            if persona is None or persona.startswith("!"):
                return persona[1:] if persona else None  # raw content, e.g. not JSON
            return {
                "persona": persona,
                "occupation": self.attributes.get("occupation", " Fisher "),
                "age_band": self.attributes.get("age_band", "35-44"),
                "location": self.attributes.get("location", ""),
                "interests": self.attributes.get("interests", ["tides", "", "boats"]),
                "kind": self.attributes.get("kind", "one person"),
            }
        n = body["response_format"]["json_schema"]["schema"]["properties"]["people"]["maxItems"]
        parent = _parent(next(p for p in reversed(asked) if _PARENT_LINE in p))
        if self.p2p is not None:
            return {"people": self.p2p(parent, n)}
        with self._lock:
            start, self._next = self._next, self._next + n
        return {
            "people": [
                {"relation": RELATIONS[i % len(RELATIONS)], "persona": POOL[i]}
                for i in range(start, start + n)
            ]
        }


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return get_embedder()


@pytest.fixture
def settings(fake_server: FakeOpenAIServer, llm_settings_factory: Any) -> LLMSettings:
    return llm_settings_factory(base_url=fake_server.base_url, max_retries=0)


def _corpus(tmp_path: Path, keys: list[str], name: str = "texts.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps({"body": TEXTS[k], "id": k}) + "\n" for k in keys))
    return path


async def _build(
    store: PersonaStore,
    settings: LLMSettings,
    path: Path,
    embedder: Embedder,
    **options: Any,
) -> BuildReport:
    async with LLMClient(settings) as client:
        builder = PersonaBuilder(store, client, BuildOptions(**options), embedder=embedder)
        records = read_texts(path, text_field="body", on_error=builder.note_malformed)
        return await builder.run(records)


# -- Text-to-Persona -------------------------------------------------------------------


async def test_t2p_yields_one_persona_per_angle_with_attributes(
    fake_server: FakeOpenAIServer, settings: LLMSettings
) -> None:
    table = {
        (k, a): f"A reader number {i} who would {a} the {k} notes"
        for i, k in enumerate(TEXTS)
        for a in ANGLES
    }
    fake_server.configure(responder=ScriptedModel(t2p=table))
    texts = [TEXTS["tides"], TEXTS["bread"]]
    async with LLMClient(settings) as client:
        out = await text_to_persona(client, texts, ANGLES, "coarse")
    assert [len(row) for row in out] == [4, 4]
    for row, key in zip(out, ("tides", "bread"), strict=True):
        assert [c.angle for c in row] == list(ANGLES)  # type: ignore[union-attr]
        for candidate in row:
            assert not isinstance(candidate, BaseException) and hasattr(candidate, "text")
            assert candidate.text == table[(key, candidate.angle)]
            assert candidate.origin == "text_to_persona" and candidate.granularity == "coarse"
            # Empty attributes are left out; the rest is trimmed.
            assert candidate.attributes == {
                "occupation": "Fisher",
                "age_band": "35-44",
                "interests": ["tides", "boats"],
            }
    requests = fake_server.requests
    assert len(requests) == 8
    assert {r["response_format"]["type"] for r in requests} == {"json_schema"}


async def test_granularity_changes_the_prompt(
    fake_server: FakeOpenAIServer, settings: LLMSettings
) -> None:
    coarse = t2p_messages(TEXTS["bike"], "read", "coarse")[-1]["content"]
    fine = t2p_messages(TEXTS["bike"], "read", "fine")[-1]["content"]
    assert coarse != fine and "short and general" in coarse and "specific" in fine
    assert "have written" in t2p_messages(TEXTS["bike"], "write", "fine")[-1]["content"]
    fake_server.configure(responder=ScriptedModel())
    async with LLMClient(settings) as client:
        await text_to_persona(client, [TEXTS["bike"]], ["read"], "fine")
    sent = fake_server.requests[0]["messages"]
    assert any(m["content"] == fine for m in sent)
    # The text is data: braces and quotes reach the model verbatim.
    odd = 'He said "{{ angle }}" and {% raw %} left.'
    assert odd in t2p_messages(odd, "like", "coarse")[-1]["content"]


def _bounded(schema: dict[str, Any], defs: dict[str, Any]) -> list[str]:
    """Paths of strings or arrays in a JSON schema without a length bound."""
    if "$ref" in schema:
        return _bounded(defs[schema["$ref"].split("/")[-1]], defs)
    problems = []
    kind = schema.get("type")
    if kind == "string" and "enum" not in schema and "maxLength" not in schema:
        problems.append(schema.get("title", "?"))
    if kind == "array":
        if "maxItems" not in schema:
            problems.append(schema.get("title", "?"))
        problems += _bounded(schema["items"], defs)
    for sub in schema.get("properties", {}).values():
        problems += _bounded(sub, defs)
    for sub in schema.get("anyOf", []):
        problems += _bounded(sub, defs)
    return problems


def test_worked_examples_fit_the_schemas_and_copies_are_echoes() -> None:
    data = examples()
    assert set(data) == {"text_to_persona"}
    for granularity in GRANULARITIES:
        for angle in ANGLES:
            answer = data["text_to_persona"][granularity][angle]
            PersonaAnswer.model_validate(answer)
        # Issue 18 item 5: no Persona-to-Persona example whose labels could leak; the
        # question lists the relation vocabulary instead.
        messages = p2p_messages("A nurse who cycles to work", 2, granularity)
        assert [m["role"] for m in messages] == ["system", "user"]
        assert all(term in messages[1]["content"] for term in VOCABULARY)
        # A small model copying the example is caught before dedup.
        copy = data["text_to_persona"][granularity]["read"]["persona"]
        assert QualityFilter().reason(copy, example_context(granularity)) == "echo"


@pytest.mark.parametrize("model", [PersonaAnswer, related_schema(2)])
def test_every_string_and_list_in_the_schemas_is_bounded(model: Any) -> None:
    schema = model.model_json_schema()
    assert _bounded(schema, schema.get("$defs", {})) == []


# -- quality filters -------------------------------------------------------------------


def test_quality_filters_count_by_reason() -> None:
    flt = QualityFilter(min_words=3, max_words=12)
    cases = {
        "": "empty",
        "A nurse": "too_short",
        "A nurse " + "who works very long shifts " * 3: "too_long",
        "As an AI language model I cannot describe people": "refusal",
        "I'm sorry, but I can't help with that request": "refusal",
        "Here is a persona: a nurse who cycles": "boilerplate",
        "A [NAME] who reads the news": "boilerplate",
        "A person who would read this article": "boilerplate",
        # The prompt's own words, copied back on a real package description.
        "A single human being who uses the packaging library": "boilerplate",
        "A council approved a protected bike lane on Elm Street": "echo",
        # Issue 18 item 5: groups, organisations and tools are not personas.
        "A team of robotics engineers building rovers": "group_or_thing",
        "An AI-powered text editor for developers": "group_or_thing",
        "A Python library for parsing dates": "group_or_thing",
        "A mystery company with big plans": "group_or_thing",
        "Mike Smith from Leeds, England": "not_a_persona",
        "A retired nurse who volunteers at the shelter": None,
        "A young and hardworking baker in Lyon": None,
        "A 34-year-old in Oslo": None,
        "A beekeeper from Reykjavik": None,
    }
    for text, expected in cases.items():
        assert flt.check(text, context=TEXTS["bike"]) == expected, text
    assert set(flt.counts) <= set(REASONS)
    assert flt.counts == Counter(v for v in cases.values() if v is not None)
    assert not looks_like_person("Quarterly earnings beat the forecast")
    assert not looks_like_person("A mystery company with big plans")
    # The model's own word on the persona, and modifiers that stay people.
    assert flt.reason("A nurse who cycles to work", kind="group of people") == "not_one_person"
    assert flt.reason("A nurse who cycles to work", kind="one person") is None
    for person in ("A team leader at a bakery", "A software engineer in Oslo", "A library user"):
        assert non_person_reason(person) is None, person
    assert non_person_reason("A group of friends who hike") == "group"


def test_relation_labels_are_normalised() -> None:
    assert normalise_relation(" Mentor / Mentee ") == "mentor-mentee"
    assert normalise_relation("Patient to Caregiver") == "patient-caregiver"
    assert normalise_relation("Next-door  Neighbour.") == "next-door neighbour"
    assert normalise_relation("") == "related"
    # Issue 18 item 5: labels come from a documented vocabulary, else "other: ...".
    assert relation_label(" Mentor / Mentee ") == "mentor-mentee"
    assert relation_label("Student-Teacher") == "teacher-student"
    assert relation_label("Wife") == "partner"
    assert relation_label("coworker") == "colleague"
    assert relation_label("favorite") == "other: favorite"
    assert relation_label("genre") == "other: genre"


def test_relation_is_an_enum_of_the_vocabulary_that_a_grammar_can_take() -> None:
    # Issue 18 item 5: the label is part of the output grammar, not mapped afterwards.
    schema = related_schema(2).model_json_schema()
    person = schema["$defs"]["RelatedPerson"]
    assert person["properties"]["relation"]["enum"] == [*VOCABULARY, "other"]
    # The persona comes before the relation (a small model copied the parent otherwise).
    assert list(person["properties"]) == ["persona", "relation", "other"]
    assert person["required"] == ["persona", "relation"]
    # llama.cpp's converter takes the schema as the local backend sends it.
    llama_grammar = pytest.importorskip("llama_cpp.llama_grammar")
    sent = json.dumps(bounded_integers_as_enums(grammar_schema(schema)))
    assert llama_grammar.LlamaGrammar.from_json_schema(sent, verbose=False) is not None


def test_out_of_vocabulary_relations_do_not_validate_and_other_says_what() -> None:
    model, persona = related_schema(1), "A night-shift nurse at the harbour clinic"
    for label in ("spouse", "genre", "Colleague", "other: friend"):
        with pytest.raises(ValidationError):
            model.model_validate({"people": [{"persona": persona, "relation": label}]})
    cases = {"": "other", "Wife": "partner", "favorite": "other: favorite"}
    for other, stored in cases.items():
        answer = {"persona": persona, "relation": "other", "other": other}
        assert model.model_validate({"people": [answer]}).people[0].label() == stored
    answer = {"persona": persona, "relation": "neighbour", "other": "favorite"}
    assert model.model_validate({"people": [answer]}).people[0].label() == "neighbour"


# -- the build: hops, dedup, resume, failures ------------------------------------------


async def test_p2p_builds_hops_with_edges_and_relation_labels(
    fake_server: FakeOpenAIServer, settings: LLMSettings, embedder: Embedder, tmp_path: Path
) -> None:
    fake_server.configure(responder=ScriptedModel())
    store = PersonaStore(tmp_path / "p.db")
    path = _corpus(tmp_path, ["tides", "bread"])
    report = await _build(store, settings, path, embedder, angles=("read",), hops=2, per_hop=2)
    assert [s.stored for s in report.stages.values()] == [2, 4, 8]
    assert list(report.stages) == ["text-to-persona", "hop 1", "hop 2"]
    personas = {p.id: p for p in store.personas()}
    by_hop = Counter(p.hop for p in personas.values())
    assert by_hop == {0: 2, 1: 4, 2: 8}
    edges = store.edges()
    assert len(edges) == 12 == report.total("edges")
    for edge in edges:
        parent, child = personas[edge.src_id], personas[edge.dst_id]
        assert child.parent_id == parent.id and child.hop == parent.hop + 1
        assert child.origin == "persona_to_persona" and child.attributes["relation"]
        assert edge.relation == child.attributes["relation"]
    assert {e.relation for e in edges} <= {relation_label(r) for r in RELATIONS} <= set(VOCABULARY)
    t2p = [p for p in personas.values() if p.hop == 0]
    assert {p.origin for p in t2p} == {"text_to_persona"}
    assert all(p.angle == "read" and p.source_text_id and p.model for p in t2p)


async def test_p2p_stores_no_edge_with_an_out_of_vocabulary_relation(
    fake_server: FakeOpenAIServer, settings: LLMSettings, embedder: Embedder, tmp_path: Path
) -> None:
    # A server that ignores the schema answers "spouse": the answer fails validation, so
    # no edge or persona carries the label.
    script = ScriptedModel(
        p2p=lambda parent, n: [{"relation": "spouse", "persona": POOL[i]} for i in range(n)]
    )
    schemas: list[dict[str, Any]] = []

    def responder(body: dict[str, Any]) -> Any:
        schemas.append(body["response_format"]["json_schema"])
        return script(body)

    fake_server.configure(responder=responder)
    store = PersonaStore(tmp_path / "p.db")
    path = _corpus(tmp_path, ["tides", "bread"])
    report = await _build(store, settings, path, embedder, angles=("read",), hops=1, per_hop=2)
    sent = [s["schema"] for s in schemas if s["name"] == "RelatedPeople"]
    assert sent and all(
        s["$defs"]["RelatedPerson"]["properties"]["relation"]["enum"] == [*VOCABULARY, "other"]
        for s in sent
    )
    assert report.stages["hop 1"].failed == 2 and report.stages["hop 1"].stored == 0
    assert store.edges() == [] and store.count() == 2


async def test_p2p_does_not_expand_dedup_dropped_personas(
    fake_server: FakeOpenAIServer, settings: LLMSettings, embedder: Embedder, tmp_path: Path
) -> None:
    same = "A night-shift nurse at the harbour clinic who looks after injured sailors"
    script = ScriptedModel(p2p=lambda parent, n: [{"relation": "friend", "persona": same}] * n)
    fake_server.configure(responder=script)
    store = PersonaStore(tmp_path / "p.db")
    path = _corpus(tmp_path, ["tides", "bread", "bike"])
    report = await _build(store, settings, path, embedder, angles=("read",), hops=4, per_hop=2)
    # Hop 1: three parents ask; the repeated answer is stored once. Hop 2: only that one
    # persona asks, and gets itself back. Hops 3 and 4 have nothing left to expand.
    assert script.calls["RelatedPeople"] == 3 + 1
    hops = report.stages
    assert [hops[f"hop {h}"].inputs for h in (1, 2, 3, 4)] == [3, 1, 0, 0]
    assert hops["hop 1"].stored == 1 and hops["hop 1"].generated == 6
    assert hops["hop 1"].deduped["minhash"] == 5
    # Its own answer repeats it, so the echo filter drops it before dedup would.
    assert hops["hop 2"].stored == 0 and hops["hop 2"].filtered["echo"] == 2
    assert store.count() == 4
    # The other two parents still link to the persona they named (no self-loop for it).
    nurse = next(p for p in store.personas() if p.text == same)
    edges = store.edges()
    assert len(edges) == 3 and {e.dst_id for e in edges} == {nurse.id}
    assert hops["hop 1"].linked == 2


async def test_dedup_counts_per_stage_and_against_the_store(
    fake_server: FakeOpenAIServer, settings: LLMSettings, embedder: Embedder, tmp_path: Path
) -> None:
    nurse = "A retired nurse who volunteers at the local animal shelter."
    table = {
        ("tides", "read"): nurse,
        ("bread", "read"): "A retired NURSE who volunteers at the  local animal shelter",
        ("bike", "read"): "A retired nurse volunteering at the local animal shelter.",
        ("earnings", "read"): T2P[("earnings", "read")],
        ("choir", "read"): "A retired nurse, who volunteers at the local animal shelter!",
    }
    fake_server.configure(responder=ScriptedModel(t2p=table))
    store = PersonaStore(tmp_path / "p.db")
    first = await _build(
        store,
        settings,
        _corpus(tmp_path, ["tides", "bread", "bike", "earnings"]),
        embedder,
        angles=("read",),
        hops=0,
    )
    stage = first.stages["text-to-persona"]
    assert stage.generated == 4 and stage.stored == 2
    assert stage.deduped == {"minhash": 1, "embedding": 1}
    # A later build is checked against what the store holds (dedup seeded with it).
    second = await _build(
        store,
        settings,
        _corpus(tmp_path, ["choir"], "more.jsonl"),
        embedder,
        angles=("read",),
        hops=0,
    )
    assert second.seeded == 2
    assert second.stages["text-to-persona"].deduped["minhash"] == 1
    assert second.stages["text-to-persona"].stored == 0 and store.count() == 2


async def test_build_is_resumable(
    fake_server: FakeOpenAIServer, settings: LLMSettings, embedder: Embedder, tmp_path: Path
) -> None:
    fake_server.configure(responder=ScriptedModel())
    store = PersonaStore(tmp_path / "p.db")
    path = _corpus(tmp_path, ["tides", "bread", "bike", "tides"])
    first = await _build(store, settings, path, embedder, hops=1, per_hop=1, limit=2)
    assert first.texts_read == 2 and first.stages["text-to-persona"].stored == 4
    assert first.stages["hop 1"].stored == 4
    sent = len(fake_server.requests)
    second = await _build(store, settings, path, embedder, hops=1, per_hop=1)
    # The first two texts are skipped, the repeated "tides" too; only "bike" is new.
    assert second.texts_read == 4 and second.texts_skipped == 3
    assert second.stages["text-to-persona"].stored == 2 and second.stages["hop 1"].stored == 2
    assert len(fake_server.requests) == sent + 2 + 2
    stats = store.stats()
    assert stats["personas"] == 12 and stats["edges"] == 6 and stats["source_texts"] == 3
    third = await _build(store, settings, path, embedder, hops=1, per_hop=1)
    assert third.texts_skipped == 4 and third.total("stored") == 0 and third.total("requests") == 0
    assert store.stats() == stats
    texts = [p.text for p in store.personas()]
    assert len(texts) == len(set(texts))


async def test_llm_failures_are_counted_and_the_build_completes(
    fake_server: FakeOpenAIServer, settings: LLMSettings, embedder: Embedder, tmp_path: Path
) -> None:
    table = dict(T2P)
    table[("bread", "write")] = "!this is not JSON at all"
    fake_server.configure(responder=ScriptedModel(t2p=table))
    store = PersonaStore(tmp_path / "p.db")
    path = _corpus(tmp_path, ["tides", "bread", "bike"])
    report = await _build(store, settings, path, embedder, hops=0, concurrency=2)
    stage = report.stages["text-to-persona"]
    assert stage.requests == 6 and stage.failed == 1 and stage.held_back == 1
    assert report.texts_failed == 1 and sum(report.errors.values()) == 1
    assert report.first_error and report.stopped is None
    assert stage.stored == 4 and report.llm["errors"]
    with store.session() as session:
        registered = set(session.exec(select(SourceText.text)))
    assert TEXTS["bread"] not in registered and len(registered) == 2
    # The failed text is retried by the next run; a server error there is counted too.
    fake_server.configure(responder=ScriptedModel(), queue=[{"status": 500}])
    again = await _build(store, settings, path, embedder, hops=0)
    assert again.texts_skipped == 2 and again.stages["text-to-persona"].failed == 1
    assert again.errors == {"server_error": 1} and again.texts_failed == 1
    final = await _build(store, settings, path, embedder, hops=0)
    assert final.stages["text-to-persona"].stored == 2 and final.texts_failed == 0
    assert store.count() == 6


async def test_build_stops_early_when_the_model_cannot_answer(
    fake_server: FakeOpenAIServer,
    llm_settings_factory: Any,
    embedder: Embedder,
    tmp_path: Path,
) -> None:
    fake_server.configure(responder=ScriptedModel())
    store = PersonaStore(tmp_path / "p.db")
    path = _corpus(tmp_path, ["tides", "bread", "bike", "earnings"])
    # A spent budget stops new work at once; what was answered is kept.
    budget = llm_settings_factory(base_url=fake_server.base_url, max_retries=0, max_calls=3)
    report = await _build(store, budget, path, embedder, hops=1, chunk_size=2, concurrency=1)
    assert report.stopped and "budget" in report.stopped
    assert (
        report.texts_read == 2
        and report.texts_failed == 1
        and list(report.stages) == ["text-to-persona"]
    )
    assert store.count() == 2
    # A server nobody answers on: the build stops after the first chunk that fails whole
    # (the first one does not: one of its answers comes from the cache).
    dead = llm_settings_factory(base_url="http://127.0.0.1:9/v1", max_retries=0, timeout_s=2)
    report = await _build(store, dead, path, embedder, hops=1, chunk_size=2)
    assert report.stopped and "connection" in report.stopped
    assert report.texts_read == 4 and report.texts_failed == 3 and store.count() == 2
    # Once the model answers again, a rerun finishes the job.
    ok = llm_settings_factory(base_url=fake_server.base_url, max_retries=0)
    report = await _build(store, ok, path, embedder, hops=1, chunk_size=2)
    assert report.stopped is None and report.texts_skipped == 1
    assert store.stats()["source_texts"] == 4 and store.count() == 8 + 16


async def test_quality_drops_are_reported_by_the_build(
    fake_server: FakeOpenAIServer, settings: LLMSettings, embedder: Embedder, tmp_path: Path
) -> None:
    table = dict(T2P)
    table[("tides", "read")] = "An AI language model cannot know who reads this."
    table[("tides", "write")] = "A tide table for the northern harbour"
    fake_server.configure(responder=ScriptedModel(t2p=table))
    store = PersonaStore(tmp_path / "p.db")
    report = await _build(store, settings, _corpus(tmp_path, ["tides", "bike"]), embedder, hops=0)
    stage = report.stages["text-to-persona"]
    assert stage.filtered == {"refusal": 1, "not_a_persona": 1} and stage.stored == 2


async def test_relevance_to_the_source_is_stored_reported_and_filterable(
    fake_server: FakeOpenAIServer, settings: LLMSettings, embedder: Embedder, tmp_path: Path
) -> None:
    # Issue 18 item 5: each persona's MiniLM cosine to its text; --min-relevance drops.
    table = dict(T2P)
    table[("bread", "write")] = "A retired opera singer who collects stamps from Peru"
    fake_server.configure(responder=ScriptedModel(t2p=table))
    store = PersonaStore(tmp_path / "p.db")
    path = _corpus(tmp_path, ["bread"])
    report = await _build(store, settings, path, embedder, hops=0)
    stage = report.stages["text-to-persona"]
    assert stage.stored == 2 and len(stage.relevance) == 2
    relevance = {p.text: p.attributes["relevance"] for p in store.iter_personas()}
    assert sorted(relevance.values()) == sorted(stage.relevance)
    off_topic = relevance.pop(table[("bread", "write")])
    assert off_topic < 0.2 < min(relevance.values())

    strict = PersonaStore(tmp_path / "strict.db")
    report = await _build(strict, settings, path, embedder, hops=0, min_relevance=0.2)
    stage = report.stages["text-to-persona"]
    assert stage.filtered == {"irrelevant": 1} and stage.stored == 1
    assert table[("bread", "write")] not in {p.text for p in strict.iter_personas()}


# -- the command -----------------------------------------------------------------------


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:  # keeps "build" a subcommand
        pass

    return app


def test_build_command_summary(
    fake_server: FakeOpenAIServer, embedder: Embedder, tmp_path: Path
) -> None:
    fake_server.configure(responder=ScriptedModel())
    path = _corpus(tmp_path, ["tides", "bread"])
    path.write_text(path.read_text() + "{broken\n")
    db = str(tmp_path / "cli.db")
    args = ["build", str(path), "--text-field", "body", "--store", db, "--hops", "1",
            "--per-hop", "1", "--angles", "read,write", "--base-url", fake_server.base_url,
            "--quiet"]  # fmt: skip
    result = CliRunner().invoke(_cli(), args, env={"OPENAI_API_KEY": "sk-test"})
    assert result.exit_code == 0, result.output
    out = result.output
    for label in ("stored", "dropped: dedup minhash", "LLM calls", "cache hits", "edges"):
        assert label in out
    assert "warning:" in out and ":3:" in out  # the broken row is named and skipped
    assert "8 personas" in out and "4 edges" in out
    again = CliRunner().invoke(_cli(), args, env={"OPENAI_API_KEY": "sk-test"})
    assert again.exit_code == 0 and "8 personas" in again.output


def test_build_command_bad_input_is_one_error_line(tmp_path: Path) -> None:
    path = _corpus(tmp_path, ["tides"])
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    db = str(tmp_path / "cli.db")
    for args, words in (
        (["build", str(tmp_path / "absent.jsonl"), "--store", db], "not found"),
        (["build", str(path), "--text-field", "about", "--store", db], "about"),
        (["build", str(path), "--text-field", "body", "--store", str(not_a_dir / "x.db")],
         "store"),
        (["build", str(path), "--text-field", "body", "--store", "nosuchdialect://x"], "x"),
        (["build", str(path), "--angles", "read,skim", "--store", db], "skim"),
        (["build", str(path), "--granularity", "medium", "--store", db], "medium"),
    ):  # fmt: skip
        result = CliRunner().invoke(_cli(), args)
        assert result.exit_code == 2, (args, result.output)
        assert result.output.count("error:") == 1 and words in result.output, result.output
        assert "Traceback" not in result.output
    assert not Path(db).exists()  # nothing was created for input that was refused
