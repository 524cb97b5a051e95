"""Tests for ``sandbox export``: run databases in, validated training files out.

Two runs are used. A forecast run made by the real runner against the fixture server, with a
scripted agent that always fails and one whose replies hold an e-mail address and a phone
number. And an NPC-world run written here directly (that mode is not built yet): its
conversations are chosen so that each filter (failed, invalid, too short, duplicate) and the
scrubber has exactly one known case, beside twelve ordinary conversations.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from sandbox.cli import app
from sandbox.export import ExportError, ExportReport, export_run
from sandbox.export.clean import first_of_near_duplicates, scrub_text
from sandbox.export.records import OpenAIRecord, ParquetRecord, ShareGPTRecord
from sandbox.export.samples import Sample, collect
from sandbox.export.writers import split_groups
from sandbox.rundb import PLAYER_ID, RunDatabase, RunRow
from tests.support.runs import make_run, personas, scripted

# --- the forecast run ------------------------------------------------------------------------

N, STEPS, SEED = 8, 2, 3
FORECAST = f"""\
name: export-forecast
seed: {SEED}
population: {{source: people.jsonl}}
graph: {{type: watts_strogatz, k: 2, p: 0.0}}
steps: {STEPS}
timeline:
  - {{step: 0, content: "A bakery opens a bread subscription."}}
  - {{step: 1, content: "The bakery adds a second shop."}}
interaction: {{activation: 1.0, word_of_mouth: false}}
questions:
  - {{id: intent, type: choice, ask: "Would you subscribe?", options: [yes, no]}}
"""
FAILING, CONTACT = 3, 5
KEPT_NUMBERS = "At $29 a month in 2024, by step {step} I'd pay 1,299.99 a year."


def forecast_answer(i: int, step: int) -> dict[str, Any] | str:
    """Persona 3 always sends broken JSON; persona 5 gives out contact details."""
    if i == FAILING:
        return "this is not JSON"
    reaction = KEPT_NUMBERS.format(step=step) + f" Persona {i} thinks it over."
    if i == CONTACT:
        reaction = "Email me at jane.doe@example.com or call +44 20 7946 0958."
    return {"reaction": reaction, "intent": "yes" if (i + step) % 2 else "no", "post": ""}


@pytest.fixture(scope="module")
def forecast_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("forecast")
    db, _ = make_run(
        tmp, FORECAST, scripted(forecast_answer, SEED, STEPS, N), population=personas(N)
    )
    return db


# --- the NPC run ------------------------------------------------------------------------------

MARA, TOM, IVY, P = 0, 1, 2, PLAYER_ID
NPC_AGENTS = [
    (MARA, "You are Mara, the village baker. Warm, chatty, up before dawn.", "", "Mara"),
    (TOM, "You are Tom, the blacksmith. Gruff but kind.", "", "Tom"),
    # No recorded system prompt: the persona stands in.
    (IVY, "", "Ivy, a herbalist who distrusts strangers.", "Ivy"),
]
BREAD = [
    "Good morning! Any fresh bread today?",
    "Rye and sourdough, still warm from the oven.",
    "I'll take a sourdough loaf, please.",
    "That's two coins, and mind the crust, it's hot.",
]
CONTACT_LINE = (
    "Write to ivy.green@example.org or call 555-123-4567 if you need salves; "
    "I sold 1,250 jars in 2023 at $4.50 each, step 3 of my plan."
)
WORDS = (
    "river", "mill", "lantern", "orchard", "frost", "market", "goat", "cart", "wool", "anvil",
    "honey", "candle", "sheep", "well", "storm", "bridge", "harvest", "ale", "barley", "forge",
    "pony", "quilt", "salt", "thatch", "cider", "bell", "kettle", "herb",
)  # fmt: skip
FILLER = range(8, 20)
# (conversation, step, topic, [(speaker, listener, content)], failed turn index or None)
CONVERSATIONS: list[tuple[int, int, str, list[tuple[int, int, str]], int | None]] = [
    (0, 0, "bread", [(P, MARA, BREAD[0]), (MARA, P, BREAD[1]), (P, MARA, BREAD[2]),
                     (MARA, P, BREAD[3])], None),
    (1, 0, "the harvest festival", [
        (MARA, TOM, "Tom, are you closing the forge for the harvest festival?"),
        (TOM, MARA, "Only in the afternoon, horses still need shoes."),
        (MARA, TOM, "Then I'll save you a honey cake for the evening."),
        (TOM, MARA, "You always do. Thank you, Mara."),
    ], None),
    (2, 1, "herbs", [(TOM, IVY, "Got anything for a burned hand?"), (IVY, TOM, "")], 1),
    (3, 1, "salves", [(P, IVY, "Hello, do you sell salves?"), (IVY, P, CONTACT_LINE),
                      (P, IVY, "Thank you, I will."), (IVY, P, "Good day, then.")], None),
    (4, 1, "weather", [(P, TOM, "Nice weather."), (TOM, P, "Aye.")], None),
    # Conversation 0 again, shouted and punctuated differently: a near-duplicate for Mara.
    (5, 2, "bread", [(P, MARA, BREAD[0].upper().replace("!", ".")), (MARA, P, BREAD[1]),
                     (P, MARA, BREAD[2].rstrip(".")), (MARA, P, BREAD[3].upper())], None),
    # The same lines from Tom: another speaker, so not a duplicate.
    (6, 2, "bread", [(P, TOM, BREAD[0]), (TOM, P, BREAD[1]), (P, TOM, BREAD[2]),
                     (TOM, P, BREAD[3])], None),
    (7, 2, "greeting", [(P, TOM, "Hello?"), (TOM, P, "")], None),  # empty reply, no error
] + [
    (c, 3, f"topic {c}", [
        (a if k % 2 == 0 else b, b if k % 2 == 0 else a,
         " ".join(random.Random(c * 10 + k).sample(WORDS, 9)))
        for k in range(4)
    ], None)
    for c, (a, b) in zip(FILLER, [(MARA, TOM), (TOM, IVY), (IVY, MARA)] * 4, strict=True)
]  # fmt: skip
NPC_FOUND = 34  # 1 + 2 + 2 + 1 + 1 + 1 + 1 + 1 + 12 * 2
AGENT_INTERACTIONS = 2


def _run_row(run_id: str) -> RunRow:
    return RunRow(
        id=run_id,
        name="village",
        scenario_yaml="name: village\n",
        scenario_hash="0",
        config_hash="0",
        seed=0,
        backend="openai",
        model="fake-model",
        steps_total=4,
    )


def _turns(run_id: str, step: int) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run_id,
            "step": step,
            "conversation": number,
            "turn": t,
            "speaker": speaker,
            "listener": listener,
            "topic": topic,
            "content": content,
            "error_kind": "timeout" if t == failed else None,
        }
        for number, at, topic, lines, failed in CONVERSATIONS
        if at == step
        for t, (speaker, listener, content) in enumerate(lines)
    ]


def _interactions(run_id: str) -> list[dict[str, Any]]:
    sent = [{"role": "system", "content": NPC_AGENTS[0][1]}, {"role": "user", "content": "Hi?"}]
    return [
        # Every row names the same columns: one insert takes its columns from the first row.
        {
            "run_id": run_id,
            "step": 0,
            "agent_id": MARA,
            "messages": sent,
            "raw_response": "Hi!",
            "error_kind": None,
        },
        {
            "run_id": run_id,
            "step": 0,
            "agent_id": TOM,
            "messages": sent,
            "raw_response": "{",
            "error_kind": "parse",
        },
    ]


@pytest.fixture(scope="module")
def npc_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("npc") / "run.db"
    run_id = "village-1"
    database = RunDatabase(path)
    agents = [
        {
            "run_id": run_id,
            "agent_id": agent_id,
            "persona_id": f"npc-{name.lower()}",
            "persona": persona or f"{name} of the village.",
            "system_prompt": system,
            "profile": {"name": name},
        }
        for agent_id, system, persona, name in NPC_AGENTS
    ]
    database.create_run(_run_row(run_id), agents, [])
    for step in range(4):
        database.commit_step(
            run_id,
            step,
            interactions=_interactions(run_id) if step == 0 else [],
            messages=[],
            states=[],
            metrics={},
            rng_state=[],
            usage={},
            turns=_turns(run_id, step),
        )
    database.close()
    return path


# --- helpers ----------------------------------------------------------------------------------

MODELS = {"openai": OpenAIRecord, "sharegpt": ShareGPTRecord, "parquet": ParquetRecord}
SUFFIX = {"openai": "jsonl", "sharegpt": "json", "parquet": "parquet"}


def read_records(path: Path, fmt: str) -> list[dict[str, Any]]:
    """The records of an export file, each checked against its format's model."""
    if fmt == "openai":
        rows = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    elif fmt == "sharegpt":
        rows = json.loads(path.read_text("utf-8"))
        assert isinstance(rows, list)
    else:
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
    for row in rows:
        MODELS[fmt].model_validate(row)
    return rows


def load_with_datasets(path: Path, fmt: str, cache: Path) -> Any:
    import datasets

    builder = "parquet" if fmt == "parquet" else "json"
    return datasets.load_dataset(builder, data_files=str(path), split="train", cache_dir=str(cache))


def chats(rows: list[dict[str, Any]]) -> list[list[dict[str, str]]]:
    return [row["messages"] for row in rows]


# --- formats ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["openai", "sharegpt", "parquet"])
def test_export_round_trips_through_datasets(fmt: str, npc_db: Path, tmp_path: Path) -> None:
    out = tmp_path / f"village.{SUFFIX[fmt]}"
    report = export_run(npc_db, out, fmt, role="all")  # type: ignore[arg-type]
    assert report.files == {out: report.kept}
    rows = read_records(out, fmt)
    loaded = load_with_datasets(out, fmt, tmp_path / "hf")
    # failed: conversation 2 (both sides) and Tom's interaction; invalid: 7; duplicate: 5.
    assert len(rows) == len(loaded) == report.kept == NPC_FOUND + AGENT_INTERACTIONS - 5
    if fmt == "sharegpt":
        turns = loaded[0]["conversations"]
        assert [t["from"] for t in turns] == ["system", "human", "gpt"]
        assert turns[0]["value"] == NPC_AGENTS[0][1]
    else:
        assert loaded[0]["messages"][-1] == {"role": "assistant", "content": "Hi!"}
    if fmt == "parquet":
        assert set(loaded.column_names) == {
            "messages", "run_id", "source", "agent_id", "persona_id", "step", "conversation"
        }  # fmt: skip
        assert loaded[0]["source"] == "agent" and loaded[0]["conversation"] is None
        npc = [r for r in loaded if r["source"] == "npc"]
        assert {r["run_id"] for r in loaded} == {"village-1"}
        assert {r["persona_id"] for r in npc} == {"npc-mara", "npc-tom", "npc-ivy"}
        assert all(r["conversation"] is not None for r in npc)


def test_agent_export_is_the_prompt_then_the_raw_reply(forecast_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "agents.jsonl"
    report = export_run(forecast_db, out, "openai", role="agent")
    database = RunDatabase(forecast_db)
    rows = database.interactions(database.run().id)  # type: ignore[union-attr]
    assert report.found == len(rows) == N * STEPS
    assert report.dropped == {"failed": STEPS, "invalid": 0, "too_short": 0, "duplicate": 0}
    good = [r for r in rows if not r.error_kind and f"Persona {CONTACT:02d}" not in str(r.messages)]
    exported = chats(read_records(out, "openai"))
    assert len(exported) == report.kept == N * STEPS - STEPS
    by_reply = {chat[-1]["content"]: chat for chat in exported}
    for row in good:  # untouched by the scrubber: exactly as sent and received
        assert by_reply[row.raw_response] == [
            *row.messages,
            {"role": "assistant", "content": row.raw_response},
        ]
    assert [m["role"] for m in exported[0]] == ["system", "user", "assistant"]
    assert len(load_with_datasets(out, "openai", tmp_path / "hf")) == report.kept


def test_records_reject_what_a_fine_tuning_job_would(tmp_path: Path) -> None:
    sys_msg = {"role": "system", "content": "You are Mara."}
    ok = [sys_msg, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    OpenAIRecord.model_validate({"messages": ok})
    OpenAIRecord.model_validate({"messages": ok[1:]})  # the system message is optional
    for bad in (
        [sys_msg, ok[2], ok[1], ok[2]],  # the assistant speaks first
        [sys_msg, ok[1]],  # nothing to learn
        [ok[1], sys_msg, ok[2]],  # system in the middle
        [sys_msg, ok[1], {"role": "assistant", "content": "  "}],  # empty reply
        [sys_msg, ok[1], {"role": "bot", "content": "Hello"}],  # unknown role
        [sys_msg, ok[1], ok[2], ok[1]],  # ends on the user
    ):
        with pytest.raises(ValidationError):
            OpenAIRecord.model_validate({"messages": bad})
    turns = [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]
    assert ShareGPTRecord.model_validate({"conversations": turns}).model_dump(by_alias=True) == {
        "conversations": turns
    }
    with pytest.raises(ValidationError):
        ShareGPTRecord.model_validate(
            {"conversations": [{"from": "user", "value": "Hi"}, turns[1]]}
        )
    meta = {"run_id": "r", "agent_id": 0, "persona_id": "p", "step": 0}
    ParquetRecord.model_validate({"messages": ok, "source": "npc", "conversation": 3, **meta})
    with pytest.raises(ValidationError):
        ParquetRecord.model_validate({"messages": ok, "source": "player", **meta})


# --- NPC samples ------------------------------------------------------------------------------


def test_npc_samples_take_one_side_of_each_conversation(npc_db: Path) -> None:
    samples = collect(RunDatabase(npc_db), "village-1", "npc")
    assert len(samples) == NPC_FOUND
    assert all(s.agent_id >= 0 and s.source == "npc" for s in samples)  # never the player
    assert [s.agent_id for s in samples if s.conversation == 0] == [MARA]
    mara, tom = (s for s in samples if s.conversation == 1)
    assert (mara.agent_id, tom.agent_id) == (MARA, TOM)
    # Mara opens: a user turn states the meeting first; Tom's last line answers nothing of hers.
    assert mara.messages == [
        {"role": "system", "content": NPC_AGENTS[0][1]},
        {"role": "user", "content": "(You meet Tom. Topic: the harvest festival)"},
        {"role": "assistant", "content": CONVERSATIONS[1][3][0][2]},
        {"role": "user", "content": CONVERSATIONS[1][3][1][2]},
        {"role": "assistant", "content": CONVERSATIONS[1][3][2][2]},
    ]
    assert [m["role"] for m in tom.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert tom.messages[-1]["content"] == "You always do. Thank you, Mara."
    ivy = next(s for s in samples if s.conversation == 3)
    assert ivy.messages[0] == {"role": "system", "content": NPC_AGENTS[2][2]}
    assert ivy.step == 1 and ivy.persona_id == "npc-ivy"
    assert {s.failed for s in samples if s.conversation == 2} == {"timeout"}


def test_npc_filters_count_each_drop(npc_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "npc.jsonl"
    report = export_run(npc_db, out, "openai", role="npc", min_turns=3)
    assert report.found == NPC_FOUND
    assert report.dropped == {"failed": 2, "invalid": 1, "too_short": 1, "duplicate": 1}
    assert report.kept == NPC_FOUND - 5 == len(read_records(out, "openai"))
    exported = chats(read_records(out, "openai"))
    lines = [m["content"] for chat in exported for m in chat]
    assert "Got anything for a burned hand?" not in lines  # the failed conversation
    assert "Aye." not in lines and "Hello?" not in lines  # too short; invalid
    assert BREAD[0].upper().replace("!", ".") not in lines  # Mara's repeat of conversation 0
    bread = [chat for chat in exported if chat[-1]["content"] == BREAD[3]]
    assert [chat[0]["content"] for chat in bread] == [NPC_AGENTS[0][1], NPC_AGENTS[1][1]]


def test_dedup_and_min_turns_can_be_turned_off(npc_db: Path, tmp_path: Path) -> None:
    report = export_run(npc_db, tmp_path / "all.jsonl", "openai", role="npc", dedup=False)
    assert report.dropped == {"failed": 2, "invalid": 1, "too_short": 0, "duplicate": 0}
    assert report.kept == NPC_FOUND - 3
    strict = export_run(npc_db, tmp_path / "long.jsonl", "openai", role="npc", min_turns=5)
    assert strict.kept == 0 and strict.dropped["too_short"] == NPC_FOUND - 3
    assert (tmp_path / "long.jsonl").read_text() == ""


def _sample(system: str, user: str, reply: str, conversation: int) -> Sample:
    messages = [
        {"role": "system", "content": system},
        {"role": "user", "content": user},
        {"role": "assistant", "content": reply},
    ]
    return Sample("r", "npc", 0, "p", 0, conversation, messages, f"npc:{conversation}")


def test_near_duplicates_need_the_same_speaker_and_the_same_word_order() -> None:
    question = "Did the dog from the mill bite the man who sells fish at the market?"
    reply = "Yes, the dog bit the man by the bridge, and the man then bit the dog back."
    flags = first_of_near_duplicates(
        [
            _sample("You are Mara.", question, reply, 0),
            _sample("You are Mara.", question.upper() + "!!", reply.replace(",", ""), 1),
            _sample("You are Tom.", question, reply, 2),  # another speaker
            # The same words in another order: another story, not a duplicate.
            _sample("You are Mara.", question, reply.replace("dog", "X").replace("man", "dog")
                    .replace("X", "man"), 3),
        ]
    )  # fmt: skip
    assert flags == [True, False, True, True]


# --- scrubbing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Call +44 20 7946 0958 now.", "Call [phone] now."),
        ("Ring (555) 123-4567 or 555.123.4567", "Ring [phone] or [phone]"),
        ("Mobile 07700 900123, office +1-800-555-1234", "Mobile [phone], office [phone]"),
        ("Mail jane.doe+bikes@example.co.uk.", "Mail [email]."),
    ],
)
def test_scrub_replaces_contacts(text: str, expected: str) -> None:
    assert scrub_text(text)[0] == expected


@pytest.mark.parametrize(
    "text",
    [
        "In 2024 it cost $29, then $1,299.99, then 19.99 a month.",
        "Between 2019-2024 and in 1990 2000 2010 we grew.",
        "On 2024-05-01, 01.05.2024 and 1/5/2024.",
        "At step 12 of 20, 1 250 000 people paid 2.500.000 euros, 12345.67 in all.",
        "Server 192.168.10.1, order 5551234567, ts 1700000000, ISBN 978-3-16-148410-0.",
        "In 2024 1500 people came 3-4 times a week at 10:30-11:45, 50% of 1,000,000.",
    ],
)
def test_scrub_keeps_years_prices_and_step_numbers(text: str) -> None:
    assert scrub_text(text) == (text, 0)


def test_export_scrubs_and_counts_scrubbed_records(forecast_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "agents.json"
    report = export_run(forecast_db, out, "sharegpt", role="agent")
    assert report.scrubbed == STEPS  # persona 5 at each step
    text = out.read_text("utf-8")
    assert "example.com" not in text and "7946" not in text
    assert text.count("[email]") >= STEPS and text.count("[phone]") >= STEPS
    for step in range(STEPS):  # other agents' numbers survive
        assert json.dumps(KEPT_NUMBERS.format(step=step))[1:-1] in text

    npc = export_run(contact_run(tmp_path), tmp_path / "npc.jsonl", "openai")
    assert npc.scrubbed == npc.kept == 1
    (chat,) = chats(read_records(tmp_path / "npc.jsonl", "openai"))
    assert chat[2]["content"] == (
        "Write to [email] or call [phone] if you need salves; "
        "I sold 1,250 jars in 2023 at $4.50 each, step 3 of my plan."
    )


def contact_run(tmp_path: Path) -> Path:
    """A small NPC run holding only conversation 3 (the one with contact details)."""
    path = tmp_path / "contact" / "run.db"
    database = RunDatabase(path)
    database.create_run(
        _run_row("contact"),
        [{"run_id": "contact", "agent_id": IVY, "persona_id": "ivy", "persona": "Ivy."}],
        [],
    )
    turns = [t | {"run_id": "contact"} for t in _turns("village-1", 1) if t["conversation"] == 3]
    database.commit_step(
        "contact", 1, interactions=[], messages=[], states=[], metrics={}, rng_state=[],
        usage={}, turns=turns,
    )  # fmt: skip
    database.close()
    return path


def test_failed_interactions_are_dropped(forecast_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "agents.parquet"
    report = export_run(forecast_db, out, "parquet", role="all")
    assert report.dropped["failed"] == STEPS
    rows = read_records(out, "parquet")
    assert f"Persona {FAILING:02d}" not in json.dumps(rows)
    assert {r["source"] for r in rows} == {"agent"}
    assert sorted({r["step"] for r in rows}) == list(range(STEPS))


# --- split ------------------------------------------------------------------------------------


Rows = list[dict[str, Any]]


def _split(npc_db: Path, tmp_path: Path, seed: int) -> tuple[ExportReport, Rows, Rows]:
    out = tmp_path / f"seed{seed}" / "village.parquet"
    report = export_run(npc_db, out, "parquet", role="all", split=0.75, seed=seed)
    train, val = out.with_name("village.train.parquet"), out.with_name("village.val.parquet")
    assert not out.exists() and list(report.files) == [train, val]
    return report, read_records(train, "parquet"), read_records(val, "parquet")


def _units(rows: Rows) -> set[tuple[Any, ...]]:
    """The split units present: NPC conversations, agent interactions."""
    return {
        ("npc", r["conversation"]) if r["source"] == "npc" else ("agent", r["step"], r["agent_id"])
        for r in rows
    }


def test_split_keeps_conversations_whole_and_is_seeded(npc_db: Path, tmp_path: Path) -> None:
    report, train, val = _split(npc_db, tmp_path, seed=1)
    assert len(train) + len(val) == report.kept == NPC_FOUND + AGENT_INTERACTIONS - 5
    assert list(report.files.values()) == [len(train), len(val)]
    assert not _units(train) & _units(val)  # no conversation on both sides
    both_sides = {c for c, *_ in CONVERSATIONS if c in FILLER or c == 1}
    val_conversations = {r["conversation"] for r in val} - {None}
    assert val_conversations and val_conversations & both_sides
    for number in val_conversations & both_sides:  # both NPCs' samples went to validation
        assert sum(r["conversation"] == number for r in val) == 2
    groups = len(_units(train) | _units(val))
    assert len(_units(train)) == round(0.75 * groups)

    _, train_again, val_again = _split(npc_db, tmp_path / "again", seed=1)
    assert (train_again, val_again) == (train, val)
    _, _, val_other = _split(npc_db, tmp_path, seed=2)
    assert _units(val_other) != _units(val)


def test_split_groups_depends_on_the_set_not_the_order() -> None:
    groups = [f"npc:{i}" for i in range(20)] * 2
    train = split_groups(groups, 0.9, seed=7)
    assert train == split_groups(list(reversed(groups)), 0.9, seed=7)
    assert len(train) == 18
    assert len(split_groups(["a", "b"], 0.99, seed=0)) == 1  # never an empty side


# --- command line -----------------------------------------------------------------------------


def test_cli_exports_and_prints_counts(npc_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.jsonl"
    result = CliRunner().invoke(
        app,
        ["export", str(npc_db.parent), "--format", "openai", "--out", str(out),
         "--role", "npc", "--min-turns", "3", "--split", "0.8", "--seed", "4"],
        env={"COLUMNS": "250"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for label in ("found", "failed", "invalid", "too_short", "duplicate", "kept", "scrubbed"):
        assert label in result.output
    assert "cli.train.jsonl" in result.output and "cli.val.jsonl" in result.output
    train = read_records(tmp_path / "cli.train.jsonl", "openai")
    val = read_records(tmp_path / "cli.val.jsonl", "openai")
    assert len(train) + len(val) == NPC_FOUND - 5


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["{missing}", "--format", "openai"], "no run found"),
        (["{garbage}", "--format", "openai"], "garbage.db"),
        (["{npc}", "--format", "openai", "--split", "1.5"], "--split"),
        (["{npc_agents}", "--format", "openai", "--role", "npc"], "no samples"),
        (["{npc}", "--format", "openai", "--out", "{folder}"], "is a folder"),
    ],
)
def test_cli_bad_input_is_one_line(
    args: list[str], words: str, npc_db: Path, forecast_db: Path, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_text("not a database")
    places = {
        "missing": str(tmp_path / "no-such-run"),
        "garbage": str(garbage),
        "npc": str(npc_db),
        "npc_agents": str(forecast_db),
        "folder": str(tmp_path),
    }
    out = tmp_path / "out.jsonl"
    argv = ["export", "--out", str(out), *(a.format(**places) for a in args)]  # a later --out wins
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert result.output.count("error:") == 1 and words in result.output, result.output
    assert "Traceback" not in result.output and not out.exists()


def test_library_refuses_a_run_without_samples_of_the_role(forecast_db: Path, tmp_path: Path):
    with pytest.raises(ExportError, match="no samples for --role npc"):
        export_run(forecast_db, tmp_path / "x.jsonl", "openai", role="npc")
