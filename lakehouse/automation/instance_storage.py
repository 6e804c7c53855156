"""Repair of a Dagster SQLite instance that two processes created at the same moment.

Dagster's SQLite storages (runs, event-log index and shards, schedules) stamp their alembic revision
when they create their tables. A process that finds the tables already created by another one, but
not yet stamped, takes them for a pre-2024 database and stamps the last revision of that era
(``LAST_KNOWN_STAMPED_SQLITE_ALEMBIC_REVISION``) beside the creator's ``head``. From then on every
open fails with alembic's "Version table 'alembic_version' has more than one head present". A new
DAGSTER_HOME opened at once by `lakehouse refresh` and `dagster dev` (or `dagster asset
materialize`) does exactly that.

Only that signature is repaired: the rows are exactly {head, the last-known stamp}. The head row was
written by a process that found no tables and created all of them with this Dagster version's
schema, so ``head`` is the true revision; the other row is the loser's misreading. Dagster has no
repair of its own for this (``dagster instance migrate`` fails on the same error), hence this module.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

# Where Dagster's SQLite storages keep their databases under DAGSTER_HOME (its default layout).
_DATABASE_GLOBS = ("history/runs.db", "history/runs/*.db", "schedules/schedules.db")


def _alembic_head() -> str:
    import dagster._core.storage.runs.sqlite.sqlite_run_storage as run_storage
    from alembic.script import ScriptDirectory
    from dagster._core.storage.sql import get_alembic_config

    return ScriptDirectory.from_config(get_alembic_config(run_storage.__file__)).get_current_head()


def _racing_stamp() -> str:
    from dagster._core.storage.sqlite import LAST_KNOWN_STAMPED_SQLITE_ALEMBIC_REVISION

    return LAST_KNOWN_STAMPED_SQLITE_ALEMBIC_REVISION


def repair_racing_stamps(dagster_home: Path, log: Callable[[str], object] = lambda _line: None) -> list[Path]:
    """Remove the loser's stamp from every database of ``dagster_home`` that two racing creators
    stamped twice; return the databases repaired. Databases with any other revisions are left
    alone (Dagster's own migration error then names them)."""
    head, racing = _alembic_head(), _racing_stamp()
    repaired = []
    for pattern in _DATABASE_GLOBS:
        for database in sorted(dagster_home.glob(pattern)):
            connection = sqlite3.connect(database, timeout=15)
            try:
                with connection:
                    try:
                        revisions = {row[0] for row in connection.execute("SELECT version_num FROM alembic_version")}
                    except sqlite3.OperationalError:  # not (yet) stamped at all: Dagster's own case
                        continue
                    if revisions != {head, racing} or head == racing:
                        continue
                    connection.execute("DELETE FROM alembic_version WHERE version_num = ?", (racing,))
            finally:
                connection.close()
            log(f"{database}: two processes created this Dagster database at once and stamped it twice; kept revision {head}")
            repaired.append(database)
    return repaired
