"""A Dagster instance two processes created at once is repaired; any other one is left alone."""

from __future__ import annotations

import sqlite3

import dagster as dg
import dagster._core.storage.runs.sqlite.sqlite_run_storage as run_storage_module
import pytest
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from dagster._core.storage.runs.schema import RunStorageSqlMetadata
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.sql import create_engine, get_alembic_config
from dagster._core.storage.sqlite import create_db_conn_string
from sqlalchemy.pool import NullPool

from lakehouse.automation.instance_storage import repair_racing_stamps


def _revisions(database) -> set[str]:
    with sqlite3.connect(database) as connection:
        return {row[0] for row in connection.execute("SELECT version_num FROM alembic_version")}


def _race_the_run_storage(dagster_home) -> None:
    """The interleaving Dagster's run storage has on a new home, replayed with its own code: the
    creator makes the tables; the loser opens the database before the creator stamps it (and
    stamps the pre-2024 revision); the creator then stamps head."""
    base = dagster_home / "history"
    base.mkdir(parents=True)
    engine = create_engine(create_db_conn_string(str(base), "runs"), poolclass=NullPool)
    RunStorageSqlMetadata.create_all(engine)  # the creator, before its stamp
    SqliteRunStorage.from_local(str(base)).dispose()  # the loser
    engine.dispose()
    # The creator's stamp read the version table while it was still empty, so it inserts its row
    # beside the loser's (a stamp that reads the loser's row would update it instead).
    head = ScriptDirectory.from_config(get_alembic_config(run_storage_module.__file__)).get_current_head()
    with sqlite3.connect(base / "runs.db") as connection:
        connection.execute("INSERT INTO alembic_version VALUES (?)", (head,))


@pytest.fixture
def dagster_home(tmp_path, monkeypatch):
    home = tmp_path / "raced_dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def test_a_twice_stamped_instance_opens_again_after_repair(dagster_home):
    _race_the_run_storage(dagster_home)
    runs_db = dagster_home / "history" / "runs.db"
    assert len(_revisions(runs_db)) == 2
    with pytest.raises(CommandError, match="more than one head"):
        with dg.DagsterInstance.get() as instance:
            instance.get_runs()

    lines = []
    assert repair_racing_stamps(dagster_home, log=lines.append) == [runs_db]
    assert len(lines) == 1 and str(runs_db) in lines[0] and "stamped it twice" in lines[0]

    with dg.DagsterInstance.get() as instance:
        result = dg.materialize([dg.asset(name="one")(lambda: 1)], instance=instance)
        assert result.success
        assert len(instance.get_runs()) == 1
    assert repair_racing_stamps(dagster_home) == []  # nothing left to repair


def test_a_healthy_instance_is_left_alone(dagster_home):
    with dg.DagsterInstance.get() as instance:
        assert dg.materialize([dg.asset(name="one")(lambda: 1)], instance=instance).success
    databases = sorted(dagster_home.rglob("*.db"))
    before = {db: _revisions(db) for db in databases}
    assert len(databases) >= 3 and all(len(r) == 1 for r in before.values())

    assert repair_racing_stamps(dagster_home) == []
    assert {db: _revisions(db) for db in databases} == before


def test_other_double_revisions_are_not_guessed_at(dagster_home):
    _race_the_run_storage(dagster_home)
    runs_db = dagster_home / "history" / "runs.db"
    with sqlite3.connect(runs_db) as connection:  # a revision this repair knows nothing about
        connection.execute("INSERT INTO alembic_version VALUES ('0123456789ab')")
    before = _revisions(runs_db)

    assert repair_racing_stamps(dagster_home) == []
    assert _revisions(runs_db) == before
