"""Alembic migrations of the persona store and the run database, on SQLite and PostgreSQL.

The schema the migrations build must equal the models (so a column added to a model without a
revision fails here), both schemas share one database, and databases made by ``create_all``
before migrations existed are adopted with their data.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

import pytest
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, inspect, text

from personahub.db import migrations
from personahub.db.engine import DatabaseError, make_engine
from personahub.db.migrations import Schema, differences, head
from personahub.store import PersonaStore, StoreError
from personahub.store.models import STORE_SCHEMA, STORE_TABLES, persona_hash
from sandbox.rundb import RUN_SCHEMA, RUN_TABLES, RunDatabase, RunRow


def _run_tables() -> list[Table]:
    return [model.__table__ for model in RUN_TABLES]  # type: ignore[attr-defined]


def _versions(url: str) -> dict[str, str]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return {
                schema.version_table: connection.execute(
                    text(f"SELECT version_num FROM {schema.version_table}")
                ).scalar_one()
                for schema in (STORE_SCHEMA, RUN_SCHEMA)
            }
    finally:
        engine.dispose()


def test_migrated_schemas_equal_the_models_in_one_database(db_url: str) -> None:
    PersonaStore(db_url).close()
    RunDatabase(db_url).close()
    engine = make_engine(db_url)
    try:
        assert differences(engine, STORE_SCHEMA) == []
        assert differences(engine, RUN_SCHEMA) == []
    finally:
        engine.dispose()
    assert _versions(db_url) == {
        STORE_SCHEMA.version_table: head(STORE_SCHEMA),
        RUN_SCHEMA.version_table: head(RUN_SCHEMA),
    }


def test_a_column_without_a_revision_is_a_difference(db_url: str) -> None:
    RunDatabase(db_url).close()
    metadata = MetaData()
    for table in _run_tables():
        copy = table.to_metadata(metadata)
        if table.name == "runs":
            copy.append_column(Column("notes", String(), nullable=True))
    changed = Schema(
        name="run database with an unmigrated column",
        script_location=RUN_SCHEMA.script_location,
        version_table=RUN_SCHEMA.version_table,
        metadata=metadata,
        tables=RUN_SCHEMA.tables,
    )
    engine = make_engine(db_url)
    try:
        found = differences(engine, changed)
    finally:
        engine.dispose()
    assert [(d[0], d[2], d[3].name) for d in found] == [("add_column", "runs", "notes")]


def test_opening_a_database_at_head_runs_no_migration(db_url: str, monkeypatch) -> None:
    PersonaStore(db_url).close()

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("upgrade ran on a database already at head")

    monkeypatch.setattr("alembic.command.upgrade", refuse)
    store = PersonaStore(db_url)
    with store.engine.connect() as connection:
        assert migrations.current(connection, STORE_SCHEMA) == migrations.head(STORE_SCHEMA)
    store.close()


def _legacy(
    url: str,
    tables: Iterable[Table],
    without_tables: Iterable[str] = (),
    without_columns: Iterable[tuple[str, str]] = (),
) -> MetaData:
    """Make the schema as ``create_all`` made it before migrations (INTEGER ids, and
    optionally without the tables and columns added later); returns its metadata."""
    metadata = MetaData()
    for table in tables:
        if table.name in without_tables:
            continue
        copy = table.to_metadata(metadata)
        for column in copy.columns:
            if isinstance(column.type, BigInteger):
                column.type = Integer()
    engine = make_engine(url)
    try:
        metadata.create_all(engine)
        with engine.begin() as connection:
            for table_name, column_name in without_columns:
                connection.execute(text(f"ALTER TABLE {table_name} DROP COLUMN {column_name}"))
    finally:
        engine.dispose()
    return metadata


def test_legacy_run_database_is_adopted_with_its_data(db_url: str) -> None:
    # The run database of the first releases: no dialogue_turns, no messages.source, no
    # agents.system_prompt/profile, no interactions.observations (revision 0002), no
    # runs.estimate (revision 0005), experiment_runs (revision 0004), agents.weight and
    # outcomes (revision 0003), interviews (revision 0006), 32-bit ids.
    late = [
        ("runs", "estimate"),
        ("messages", "source"),
        ("agents", "system_prompt"),
        ("agents", "profile"),
        ("interactions", "observations"),
        ("agents", "weight"),
    ]
    legacy = _legacy(
        db_url, _run_tables(), ["dialogue_turns", "experiment_runs", "outcomes", "interviews"], late
    )
    engine = make_engine(db_url)
    with engine.begin() as connection:
        connection.execute(
            legacy.tables["runs"].insert(),
            [
                RunRow(
                    id="old",
                    name="old",
                    scenario_yaml="name: old\n",
                    scenario_hash="s",
                    config_hash="c",
                    seed=1,
                    backend="local",
                    model="m",
                    steps_total=2,
                ).model_dump(exclude={"estimate"})  # a column of revision 0005
            ],
        )
        connection.execute(
            text(
                "INSERT INTO messages (run_id, step, kind, dst_agent, relation, content)"
                " VALUES ('old', 0, 'event', 0, '', 'news')"
            )
        )
    engine.dispose()

    database = RunDatabase(db_url, must_exist=True)
    try:
        assert [(m.content, m.source) for m in database.messages("old")] == [("news", "")]
        assert differences(database.engine, RUN_SCHEMA) == []
        if database.engine.dialect.name == "postgresql":
            # Widened to BIGINT with its sequence: ids past 2**31 are accepted.
            with database.engine.begin() as connection:
                connection.execute(
                    text("SELECT setval(pg_get_serial_sequence('messages', 'id'), 3000000000)")
                )
        database.commit_step(
            "old",
            0,
            interactions=[],
            messages=[{"run_id": "old", "step": 0, "kind": "post", "src_agent": 0,
                       "dst_agent": 1, "relation": "friend", "source": "", "content": "hi"}],
            states=[],
            metrics={},
            rng_state=[],
            usage={},
        )  # fmt: skip
        ids = [m.id for m in database.messages("old")]
        assert len(ids) == 2
        if database.engine.dialect.name == "postgresql":
            assert ids[-1] == 3000000001
    finally:
        database.close()
    assert _versions_of(db_url, RUN_SCHEMA) == head(RUN_SCHEMA)


def _versions_of(url: str, schema: Schema) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return migrations.current(connection, schema)
    finally:
        engine.dispose()


def test_legacy_store_is_adopted_with_its_data(db_url: str) -> None:
    _legacy(db_url, STORE_TABLES)
    engine = make_engine(db_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO persona (text, norm_hash, origin, hop, attributes, created)"
                " VALUES ('A baker.', :hash, 'imported', 0, '{}', CURRENT_TIMESTAMP)"
            ),
            {"hash": persona_hash("A baker.")},
        )
    engine.dispose()
    store = PersonaStore(db_url)
    try:
        assert differences(store.engine, STORE_SCHEMA) == []
        if store.engine.dialect.name == "postgresql":
            # The adopted id sequence is 64-bit: ids past 2**31 are accepted.
            with store.engine.begin() as connection:
                connection.execute(
                    text("SELECT setval(pg_get_serial_sequence('persona', 'id'), 3000000000)")
                )
        report = store.add_personas([{"text": "a   BAKER."}, {"text": "A pilot."}])
        assert (report.added, report.duplicates) == (1, 1)
        if store.engine.dialect.name == "postgresql":
            assert report.ids[1] == 3000000001
        assert store.add_edges([{"src_id": report.ids[0], "dst_id": report.ids[1],
                                 "relation": "friend"}]) == 1  # fmt: skip
        assert store.count() == 2
        assert STORE_SCHEMA.version_table in inspect(store.engine).get_table_names()
    finally:
        store.close()


@pytest.mark.parametrize("package", ["personahub.store.migrations", "sandbox.migrations"])
def test_revision_files_ship_as_package_data(package: str) -> None:
    from importlib import resources

    folder = resources.files(package)
    assert folder.joinpath("env.py").is_file()
    assert folder.joinpath("script.py.mako").is_file()
    assert any(p.name.endswith(".py") for p in folder.joinpath("versions").iterdir())


def test_new_revision_captures_a_model_change(tmp_path: Path, db_url: str) -> None:
    # What docs/migrations.md tells a developer to do, on a copy of the environment.
    location = tmp_path / "migrations"
    shutil.copytree(
        RUN_SCHEMA.script_location, location, ignore=shutil.ignore_patterns("__pycache__")
    )
    metadata = MetaData()
    for table in _run_tables():
        copy = table.to_metadata(metadata)
        if table.name == "agents":
            copy.append_column(Column("mood", String(length=32), nullable=True))
    changed = Schema(
        name="run database plus agents.mood",
        script_location=location,
        version_table=RUN_SCHEMA.version_table,
        metadata=metadata,
        tables=RUN_SCHEMA.tables,
    )
    path = migrations.new_revision(changed, "agents keep a mood")
    following = f"{int(head(RUN_SCHEMA) or 0) + 1:04d}_"
    assert path.name.startswith(following) and "add_column" in path.read_text()
    engine = make_engine(db_url)
    try:
        migrations.upgrade(engine, changed)
        assert differences(engine, changed) == []
        assert "mood" in {c["name"] for c in inspect(engine).get_columns("agents")}
    finally:
        engine.dispose()


def test_a_database_from_a_newer_version_is_refused_in_one_line(db_url: str) -> None:
    RunDatabase(db_url).close()
    PersonaStore(db_url).close()
    engine = make_engine(db_url)
    with engine.begin() as connection:
        for schema in (RUN_SCHEMA, STORE_SCHEMA):
            connection.execute(text(f"UPDATE {schema.version_table} SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(DatabaseError, match="revision 9999, newer than this version") as err:
        RunDatabase(db_url)
    assert "\n" not in str(err.value)
    with pytest.raises(StoreError, match="revision 9999"):
        PersonaStore(db_url)
