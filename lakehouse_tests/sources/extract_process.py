"""One extract of the payments source into a home's Bronze, as its own process (the crash tests
kill it at a fault point): ``python -m lakehouse_tests.sources.extract_process HOME`` with the
connection in LAKEHOUSE_POSTGRES_* variables."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from lakehouse.assets import PAYMENTS_SOURCE
from lakehouse.assets.bronze_database import extract
from lakehouse.contracts.tables import PAYMENTS, PAYMENTS_RAW
from lakehouse.io.table_store import CommitStamp
from lakehouse.sources.postgres import PostgresSourceResource
from lakehouse_tests.conftest import make_store


def source_from_environment() -> PostgresSourceResource:
    env = os.environ
    return PostgresSourceResource(
        host=env["LAKEHOUSE_POSTGRES_HOST"], port=int(env["LAKEHOUSE_POSTGRES_PORT"]), database=env["LAKEHOUSE_POSTGRES_DATABASE"],
        user=env["LAKEHOUSE_POSTGRES_USER"], password=env["LAKEHOUSE_POSTGRES_PASSWORD"], sslmode="require",
        batch_rows=int(env.get("LAKEHOUSE_POSTGRES_BATCH_ROWS", "100000")), key_snapshot_hours=None,
    )


def main(home: str, run_id: str) -> int:
    store = make_store(Path(home))
    source = source_from_environment()
    with source.connect() as reader:
        report = extract(PAYMENTS_SOURCE, PAYMENTS_RAW, PAYMENTS, reader, store, source, CommitStamp(run_id, "bronze/payments_raw"),
                         logging.getLogger("extract"))
    print(f"appended {report.rows_appended} in {len(report.batches)} batch(es)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
