"""Streaming input readers: each input type, stable ids, truncation and clear errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from personahub.build.sources import read_texts, truncate_text
from personahub.rows import SourceError, normalise_text, text_hash


def _write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_jsonl_ids_hashes_and_skips(tmp_path: Path) -> None:
    path = _write_jsonl(
        tmp_path / "docs.jsonl",
        [{"text": "First  text."}, "{not json", {"text": ""}, {"text": "Third text", "x": 1}],
    )
    errors: list[tuple[int, str]] = []
    records = list(read_texts(path, on_error=lambda line, why: errors.append((line, why))))
    assert [r.id for r in records] == ["docs.jsonl:1", "docs.jsonl:4"]
    assert records[0].text == "First  text."
    assert records[0].content_hash == text_hash("first text.")
    assert records[0].origin == f"{path}:1"
    assert [line for line, _ in errors] == [2, 3]
    assert "bad JSON" in errors[0][1]


def test_jsonl_chosen_field_and_unknown_field(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "d.jsonl", [{"body": "b1", "title": "t1"}, {"title": "t2"}])
    assert [r.text for r in read_texts(path, text_field="title")] == ["t1", "t2"]
    with pytest.raises(SourceError) as err:
        read_texts(path, text_field="content_x")
    assert "content_x" in str(err.value) and "body, title" in str(err.value)


def test_no_text_field_names_fields_found(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "d.jsonl", [{"title": "t1", "year": 2020}])
    with pytest.raises(SourceError, match="fields found: title, year"):
        read_texts(path)


def test_missing_file() -> None:
    with pytest.raises(SourceError, match="file not found"):
        read_texts("/nonexistent/input.jsonl")


def test_csv(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text('id,content\n1,"A text, with a comma"\n2,\n3,"multi\nline"\n')
    records = list(read_texts(path, on_error=lambda *_: None))
    assert [(r.id, r.text) for r in records] == [
        ("d.csv:1", "A text, with a comma"),
        ("d.csv:3", "multi\nline"),
    ]


def test_parquet_streams_chosen_column(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    table = pa.table({"doc": [f"text number {i}" for i in range(10_000)], "n": list(range(10_000))})
    pq.write_table(table, path, row_group_size=1000)
    records = read_texts(path, text_field="doc")
    first = next(records)
    assert first.id == "d.parquet:1" and first.text == "text number 0"
    rest = list(records)
    assert len(rest) == 9_999 and rest[-1].id == "d.parquet:10000"
    with pytest.raises(SourceError, match="fields found: doc, n"):
        read_texts(path, text_field="body")


def test_directory_sorted_recursive(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.md").write_text("# Zed\nnotes")
    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "c.txt").write_text("   ")
    (tmp_path / "skip.json").write_text("{}")
    records = list(read_texts(tmp_path))
    assert [r.id for r in records] == ["a.txt:1", "b/z.md:1"]
    assert records[1].text == "# Zed\nnotes"


def test_stdin_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("one text\n\nanother text\n"))
    records = list(read_texts("-"))
    assert [(r.id, r.text) for r in records] == [
        ("stdin:1", "one text"),
        ("stdin:3", "another text"),
    ]


def test_stdin_jsonl(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [json.dumps({"content": "c1"}), json.dumps({"content": "c2"})]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    assert [r.text for r in read_texts("-")] == ["c1", "c2"]


def test_truncation_on_word_boundary(tmp_path: Path) -> None:
    text = " ".join(f"word{i}" for i in range(100))
    cut, was_cut = truncate_text(text, max_tokens=10)
    assert was_cut and cut == " ".join(f"word{i}" for i in range(10))
    cut, was_cut = truncate_text(text, max_chars=30)
    assert was_cut and len(cut) <= 30 and text.startswith(cut) and text[len(cut)] == " "
    assert truncate_text("short text", max_chars=100, max_tokens=5) == ("short text", False)
    path = _write_jsonl(tmp_path / "d.jsonl", [{"text": text}])
    (record,) = read_texts(path, max_tokens=5)
    assert record.truncated and record.text.split() == text.split()[:5]


def test_normalise_text() -> None:
    assert normalise_text("  A\tPersona \n Here ") == "a persona here"
    assert text_hash("A persona") == text_hash("a   PERSONA")
