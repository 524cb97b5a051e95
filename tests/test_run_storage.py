"""What a run leaves on disk (issue 17): NUL characters never reach a database or the report
(items 9), a database URL or path never creates folders or odd files (10), and a finished
run's ``run.db`` alone holds all of it (17)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from personahub.db.engine import DatabaseError
from sandbox.report import write_report
from sandbox.rundb import AgentRow, RunDatabase, RunRow
from tests.support.runs import make_run, personas, varied_responder


def test_finished_run_db_alone_holds_the_run(tmp_path: Path) -> None:
    db_path, run_id = make_run(tmp_path)
    wal = db_path.with_name(db_path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    alone = tmp_path / "copy" / "run.db"
    alone.parent.mkdir()
    shutil.copy(db_path, alone)  # the database file only, without -wal and -shm
    with sqlite3.connect(alone) as copy:
        status = copy.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        interactions = copy.execute("SELECT count(*) FROM interactions").fetchone()[0]
    assert status == ("completed",) and interactions > 0


def test_nul_characters_are_dropped_in_the_database_and_the_report(tmp_path: Path) -> None:
    people = personas()
    for person in people:
        person["persona"] = person["persona"].replace(": a", ":\x00 a")

    def respond(body: dict) -> object:
        answer = varied_responder(body)
        if isinstance(answer, dict) and isinstance(answer.get("reaction"), str):
            answer["reaction"] += "\x00!"
        return answer

    db_path, run_id = make_run(tmp_path, responder=respond, population=people)
    database = RunDatabase(db_path, must_exist=True)
    try:
        texts = [a.persona for a in database.agents(run_id)]
        texts += [i.reaction for i in database.interactions(run_id)]
    finally:
        database.close()
    assert all(": a" in t for t in texts[:16])  # the 16 agents, each persona with the NUL gone
    assert any(t.endswith("!") for t in texts)
    assert not [t for t in texts if "\x00" in t]
    report = write_report(db_path, run_id)
    assert "\x00" not in report.read_text(encoding="utf-8")


def test_nul_characters_are_dropped_on_both_databases(db_url: str) -> None:
    database = RunDatabase(db_url)
    try:
        database.create_run(
            RunRow(
                id="r",
                name="nul\x00name",
                scenario_yaml="name: x\x00",
                scenario_hash="h",
                config_hash="c",
                seed=0,
                backend="openai",
                model="m",
                steps_total=1,
            ),
            [{"run_id": "r", "agent_id": 0, "persona_id": "p", "persona": "a\x00b"}],
            [],
        )
        run = database.run("r")
        agents = database.agents("r")
    finally:
        database.close()
    assert run is not None and run.name == "nulname" and run.scenario_yaml == "name: x"
    assert [a.persona for a in agents] == ["ab"] and isinstance(agents[0], AgentRow)


def test_sqlite_url_in_a_missing_folder_creates_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/nonexistent/dir/x.db"
    with pytest.raises(DatabaseError, match="no folder"):
        RunDatabase(url)
    assert not (tmp_path / "nonexistent").exists()


@pytest.mark.parametrize("target", ["::garbage::", "postgres:/nowhere"])
def test_neither_url_nor_path_creates_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatabaseError, match="not a database path or URL"):
        RunDatabase(target)
    assert list(tmp_path.iterdir()) == []
