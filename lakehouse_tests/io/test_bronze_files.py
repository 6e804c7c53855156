"""Bronze appends: one file per landing file, at most once under races and crashes, registered in order."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse.contracts.tables import ORDERS_RAW
from lakehouse.io import bronze_files
from lakehouse.io.bronze_files import BATCH_SOURCES_KEY, LegacyBronzeError
from lakehouse.io.table_store import CommitStamp
from lakehouse_tests.conftest import make_store
from lakehouse_tests.io.cdc import T0

# One implementation, shared by both stores; these tests look at its files on local disk (on S3 and
# Glue: lakehouse_tests/aws/test_glue_bronze.py).
pytestmark = pytest.mark.local_arrow_store_only("Bronze's files on local disk")

STAMP = CommitStamp(run_id="run-0001", asset_key="bronze/orders_raw", code_version="cv1")
D1, D2 = dt.date(2026, 1, 1), dt.date(2026, 1, 2)


def raw_rows(source: str, n: int, sources: list[str] | None = None) -> pa.Table:
    day = dt.date.fromisoformat(source.split("dt=")[1][:10])
    rows = pa.Table.from_pylist(
        [dict(_raw=f"line {i}", _line_number=i, _source_file=source, _ingested_at=T0, _batch_id="b", dt=day) for i in range(1, n + 1)],
        schema=ORDERS_RAW.arrow_schema,
    )
    if sources is not None:
        rows = rows.replace_schema_metadata({BATCH_SOURCES_KEY: json.dumps(sources).encode()})
    return rows


def root_of(store) -> Path:
    return Path(store.uri(ORDERS_RAW).removeprefix("file://"))


A = "orders/dt=2026-01-01/a.jsonl"
B = "orders/dt=2026-01-02/b.jsonl"


def test_each_landing_file_becomes_one_named_file_in_its_day(table_store):
    table_store.append(ORDERS_RAW, pa.concat_tables([raw_rows(A, 2), raw_rows("orders/dt=2026-01-01/c.jsonl", 1), raw_rows(B, 3)]), STAMP)
    files = sorted(str(p.relative_to(root_of(table_store))) for p in root_of(table_store).rglob("*.parquet"))
    assert files == ["dt=2026-01-01/a.jsonl.parquet", "dt=2026-01-01/c.jsonl.parquet", "dt=2026-01-02/b.jsonl.parquet"]
    assert table_store.ingested_sources(ORDERS_RAW, days={D1}) == {"dt=2026-01-01/a.jsonl", "dt=2026-01-01/c.jsonl"}
    assert pq.read_metadata(root_of(table_store) / "dt=2026-01-02/b.jsonl.parquet").num_rows == 3
    read = table_store.read(ORDERS_RAW)
    assert read.num_rows == 6 and sorted(set(read["dt"].to_pylist())) == [D1, D2]
    info = table_store.info(ORDERS_RAW)
    assert (info.row_count, info.files) == (6, 3)


def test_the_footer_names_the_landing_file_and_the_run(table_store):
    table_store.append(ORDERS_RAW, raw_rows(A, 1), STAMP)
    meta = pq.read_schema(root_of(table_store) / "dt=2026-01-01/a.jsonl.parquet").metadata
    assert json.loads(meta[b"lakehouse.source_files"]) == [A]
    assert json.loads(meta[b"lakehouse.stamp"])["dagster.run-id"] == "run-0001"


def test_a_landing_file_is_appended_at_most_once(table_store):
    first = table_store.append(ORDERS_RAW, raw_rows(A, 4), STAMP)
    again = table_store.append(ORDERS_RAW, raw_rows(A, 4), STAMP)
    assert (first.rows_written, first.committed) == (4, True)
    assert (again.rows_written, again.committed) == (0, False)
    assert table_store.read(ORDERS_RAW).num_rows == 4
    assert table_store.bronze(ORDERS_RAW).registered().num_rows == 1


def test_an_empty_landing_file_is_recorded_as_ingested(table_store):
    empty = raw_rows(A, 0, sources=[A])
    table_store.append(ORDERS_RAW, empty, STAMP)
    assert table_store.ingested_sources(ORDERS_RAW, days={D1}) == {"dt=2026-01-01/a.jsonl"}
    assert table_store.read(ORDERS_RAW).num_rows == 0


def test_two_writers_racing_for_one_landing_file_append_it_once(tmp_path, monkeypatch):
    """Writer A stages and is about to register when writer B does everything; then A goes on."""
    home = tmp_path / "store"
    a, b = make_store(home), make_store(home)  # two catalogs on one SQLite file: two processes' view
    register = bronze_files.BronzeFiles.register
    ran_b = []

    def register_after_b(self, entries, stamp, **kwargs):
        if not ran_b:
            ran_b.append(True)
            b.append(ORDERS_RAW, raw_rows(A, 3), CommitStamp(run_id="run-b", asset_key="bronze/orders_raw"))
        return register(self, entries, stamp, **kwargs)

    monkeypatch.setattr(bronze_files.BronzeFiles, "register", register_after_b)
    result = a.append(ORDERS_RAW, raw_rows(A, 3), STAMP)
    assert (result.rows_written, result.committed) == (0, False)  # A lost cleanly
    assert a.read(ORDERS_RAW).num_rows == 3
    assert sorted(p.name for p in root_of(a).rglob("*")) == ["a.jsonl.parquet", "dt=2026-01-01"]  # A's temporary is gone
    registered = a.bronze(ORDERS_RAW).registered()
    assert registered["file"].to_pylist() == ["dt=2026-01-01/a.jsonl.parquet"] and registered["run_id"].to_pylist() == ["run-b"]


def test_a_crash_between_registering_and_appearing_converges(table_store, monkeypatch):
    table_store.append(ORDERS_RAW, raw_rows(A, 2), STAMP)

    def crash(self, name, stage):
        raise OSError("killed before the file appeared")

    monkeypatch.setattr(bronze_files.BronzeFiles, "_claim", crash)
    with pytest.raises(OSError):
        table_store.append(ORDERS_RAW, raw_rows(B, 5), STAMP)
    monkeypatch.undo()
    pending = table_store.pending_bronze(ORDERS_RAW, 0)
    # Silver applies what is there and waits for the registered file still to come.
    assert pending.files == ["dt=2026-01-01/a.jsonl.parquet"] and pending.waiting == ["dt=2026-01-02/b.jsonl.parquet"]
    assert table_store.ingested_sources(ORDERS_RAW, days={D2}) == set()  # so the next ingest writes it
    again = table_store.append(ORDERS_RAW, raw_rows(B, 5), STAMP)
    assert again.rows_written == 5
    assert table_store.bronze(ORDERS_RAW).registered().num_rows == 2  # not registered twice
    pending = table_store.pending_bronze(ORDERS_RAW, 0)
    assert pending.files == ["dt=2026-01-01/a.jsonl.parquet", "dt=2026-01-02/b.jsonl.parquet"] and pending.waiting == []
    assert table_store.bronze_records_through(ORDERS_RAW, pending.seq) == 7


def test_pending_lists_only_what_came_after_the_watermark(table_store):
    table_store.append(ORDERS_RAW, raw_rows(A, 2), STAMP)
    first = table_store.pending_bronze(ORDERS_RAW, 0)
    table_store.append(ORDERS_RAW, raw_rows(B, 3), STAMP)
    second = table_store.pending_bronze(ORDERS_RAW, first.seq)
    assert first.files == ["dt=2026-01-01/a.jsonl.parquet"] and first.records == 2
    assert second.files == ["dt=2026-01-02/b.jsonl.parquet"] and second.records == 3 and second.seq > first.seq
    assert table_store.pending_bronze(ORDERS_RAW, second.seq).files == []
    assert table_store.bronze_records_through(ORDERS_RAW, first.seq) == 2
    assert table_store.bronze_records_through(ORDERS_RAW, second.seq) == 5
    assert table_store.bronze_seq(ORDERS_RAW) == second.seq


def test_temporaries_of_a_dead_writer_are_removed_by_the_next_write(table_store):
    table_store.append(ORDERS_RAW, raw_rows(A, 1), STAMP)
    folder = root_of(table_store) / "dt=2026-01-01"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    host = bronze_files._host()
    orphan = folder / f".c.jsonl.parquet.{host}.{dead.stdout.strip()}.0123abcd.tmp"
    live = folder / f".d.jsonl.parquet.{host}.{os.getpid()}.0123abcd.tmp"
    orphan.write_bytes(b"partial")
    live.write_bytes(b"in progress")
    table_store.append(ORDERS_RAW, raw_rows("orders/dt=2026-01-01/e.jsonl", 1), STAMP)
    assert not orphan.exists()
    assert live.exists()  # its writer (this process) may still be writing it


def test_files_of_an_older_version_are_reported_with_the_repair_command(table_store):
    folder = root_of(table_store) / "dt=2026-01-01"
    folder.mkdir(parents=True)
    pq.write_table(raw_rows(A, 1).drop_columns(["dt"]), folder / "part-0123abcd-0123456789ab.parquet")
    with pytest.raises(LegacyBronzeError, match="lakehouse repair"):
        table_store.bronze_files(ORDERS_RAW)


def test_writers_started_together_on_a_new_home_register_each_file_once(tmp_path):
    """Two writers (separate catalogs, as two processes) start at once on a home with no registry
    yet: one appends days 1 and 2, the other day 2. pyiceberg's own commit retry would re-apply a
    losing registration unchecked; the registry turns it off and re-checks instead."""
    import threading
    from collections import Counter

    day1 = [f"orders/dt=2026-01-01/orders-7-20260101-{i}.jsonl" for i in range(2)]
    day2 = [f"orders/dt=2026-01-02/orders-7-20260102-{i}.jsonl" for i in range(4)]
    for attempt in range(5):
        home = tmp_path / f"home-{attempt}"
        one, two = make_store(home), make_store(home)
        start, errors = threading.Barrier(2), []

        def append(store, sources, run, start=start, errors=errors):
            try:
                start.wait()
                store.append(ORDERS_RAW, pa.concat_tables([raw_rows(s, 1) for s in sources]).replace_schema_metadata(
                    {BATCH_SOURCES_KEY: json.dumps(sources).encode()}), CommitStamp(run_id=run, asset_key="bronze/orders_raw"))
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=append, args=(one, day1 + day2, "a")), threading.Thread(target=append, args=(two, day2, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors
        counts = Counter(make_store(home).bronze(ORDERS_RAW).registered()["file"].to_pylist())
        assert sorted(counts) == sorted(f[len("orders/"):] + ".parquet" for f in day1 + day2) and set(counts.values()) == {1}


def test_sizes_are_recorded_and_a_registry_of_an_older_version_gains_the_column(table_store):
    from pyiceberg.schema import Schema

    # A registry as an older version created it: no source_size column, one registration.
    bronze = table_store.bronze(ORDERS_RAW)
    old = Schema(*[f for f in bronze_files.REGISTRY.iceberg_schema.fields if f.name != "source_size"])
    bronze_files.create_namespace_if_missing(bronze.catalog, bronze.identifier[0])
    bronze.catalog.create_table(bronze.identifier, schema=old, partition_spec=bronze_files.REGISTRY.partition_spec(),
                                location=f"{bronze.root}__files")
    table_store.append(ORDERS_RAW, raw_rows(A, 1, sources=[A]), STAMP)
    sized = {"orders/dt=2026-01-01/c.jsonl": 1234}
    table_store.append(ORDERS_RAW, raw_rows("orders/dt=2026-01-01/c.jsonl", 2).replace_schema_metadata(
        {BATCH_SOURCES_KEY: json.dumps(sized).encode()}), CommitStamp(run_id="run-0002", asset_key="bronze/orders_raw"))
    assert table_store.ingested_sizes(ORDERS_RAW, {D1}) == {A: None, "orders/dt=2026-01-01/c.jsonl": 1234}
    assert table_store.ingested_sources(ORDERS_RAW, days={D1}) == {"dt=2026-01-01/a.jsonl", "dt=2026-01-01/c.jsonl"}
