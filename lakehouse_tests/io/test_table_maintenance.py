"""Table maintenance (io/table_maintenance.py), tested once against every table-store implementation:
compaction, manifest rewrite, snapshot expiry with file deletion, orphan removal, dry runs, and a
merge that commits while compaction runs."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from decimal import Decimal

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from lakehouse import faults
from lakehouse.contracts.maintenance import MaintenancePolicy
from lakehouse.contracts.tables import DAILY_SALES, ORDERS
from lakehouse.faults import FAULT_DIR_VARIABLE, FAULT_VARIABLE, marker
from lakehouse.io.arrow_store import ArrowTableStore
from lakehouse.io.table_store import CommitStamp
from lakehouse.io.watermarks import BuiltFrom, source_changes
from lakehouse_tests.io.cdc import batch, event, state

STAMP = CommitStamp(run_id="run-0001", asset_key="silver/orders", code_version="cv1")
MAINTENANCE = CommitStamp(run_id="run-maint", asset_key="maintenance/silver")
# Everything old enough to expire and to count as an orphan: retention is by count here.
POLICY = MaintenancePolicy(keep_snapshots=5, keep_snapshot_days=0, min_small_files=2, max_manifests=4)
LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=10)


def _small_merges(store, rounds: int = 30, first: int = 0) -> dict[str, tuple[str, int]]:
    """``rounds`` one- or two-event merges (inserts, updates, a delete now and then); returns what
    the table must hold, worked out here from the CDC rules (highest lsn wins, a delete removes)."""
    expected: dict[str, tuple[str, int]] = {}
    for i in range(first, first + rounds):
        lsn = 100 + i
        if i % 7 == 6:
            gone = sorted(expected)[0]
            store.merge(ORDERS, batch(event(gone, lsn, delete=True)), STAMP)
            expected.pop(gone)
        elif i % 3 == 2:
            key = sorted(expected)[-1]
            store.merge(ORDERS, batch(event(key, lsn, status="paid")), STAMP)
            expected[key] = ("paid", lsn)
        else:
            key = f"o-{i:03d}"
            store.merge(ORDERS, batch(event(key, lsn)), STAMP)
            expected[key] = ("placed", lsn)
    return expected


def _files_under(store, table) -> list[pafs.FileInfo]:
    fs, root = store._fs_path(table.location())
    return [f for f in fs.get_file_info(pafs.FileSelector(root.rstrip("/"), recursive=True)) if f.type == pafs.FileType.File]


def _stray_file(store, table) -> str:
    """A Parquet file in the table's data folder that no snapshot references (a failed write's)."""
    fs, root = store._fs_path(table.location())
    path = f"{root.rstrip('/')}/data/stray-{uuid.uuid4().hex}.parquet"
    with fs.open_output_stream(path) as out:
        out.write(b"PAR1 not committed")
    return path


def _norm(uri: str) -> str:
    return "/" + uri[len("file:"):].lstrip("/") if uri.startswith("file:") else uri.split("://", 1)[-1]


def _referenced_by_snapshots(table) -> set[str]:
    """What pyiceberg's own scans and snapshot listing say the table's snapshots reference."""
    files = set()
    for snapshot in table.metadata.snapshots:
        files.add(_norm(snapshot.manifest_list))
        files |= {_norm(m.manifest_path) for m in snapshot.manifests(table.io)}
        files |= {_norm(task.file.file_path) for task in table.scan(snapshot_id=snapshot.snapshot_id).plan_files()}
    return files | {_norm(table.metadata_location)} | {_norm(e.metadata_file) for e in table.metadata.metadata_log}


def test_maintenance_after_30_small_merges_keeps_the_rows_and_time_travel_with_fewer_files_and_snapshots(table_store):
    expected = _small_merges(table_store)
    table = table_store.load_table(ORDERS)
    stray = _stray_file(table_store, table)
    files_before = len(list(table.scan().plan_files()))
    at_snapshot = {s.snapshot_id: state(table.scan(snapshot_id=s.snapshot_id).to_arrow()) for s in table.metadata.snapshots}
    assert state(table_store.read(ORDERS)) == expected

    (report, tombstones) = table_store.maintain(ORDERS, MAINTENANCE, policy=POLICY, now=LATER)

    table = table.refresh()
    assert state(table_store.read(ORDERS)) == expected
    assert report.files_compacted >= POLICY.min_small_files
    assert len(list(table.scan().plan_files())) < files_before == report.data_files_before
    assert report.data_files_after == len(list(table.scan().plan_files()))
    assert len(table.metadata.snapshots) == POLICY.keep_snapshots == report.snapshots_after
    # Manifests are rewritten when they multiply (pyiceberg's merges add one per commit; Spark merges its own).
    rewrote = any(a.startswith("rewrote ") for a in report.actions)
    assert report.manifests_after < POLICY.max_manifests
    assert rewrote or not isinstance(table_store, ArrowTableStore)  # 30 pyiceberg commits: 30+ manifests
    made = sum(1 for s in table.metadata.snapshots if s.summary.get("lakehouse.maintenance"))  # compaction, manifest rewrite
    assert made == 1 + rewrote and report.snapshots_expired == report.snapshots_before + made - POLICY.keep_snapshots
    assert report.expired_files_deleted > 0 and report.orphan_files_deleted >= 1 and report.bytes_reclaimed > 0
    # Time travel: every retained snapshot reads as it did (the newest ones are maintenance's own).
    for snapshot in table.metadata.snapshots:
        rows = state(table.scan(snapshot_id=snapshot.snapshot_id).to_arrow())
        assert rows == at_snapshot.get(snapshot.snapshot_id, expected)
    # Nothing is left on disk that no snapshot references (all of it is older than the orphan age here).
    on_disk = {_norm(f.path) for f in _files_under(table_store, table)}
    assert _norm(stray) not in on_disk
    # (Spark on a local filesystem writes a Hadoop checksum ``.name.crc`` beside each file: it goes with it.)
    owners = {f if not f.rsplit("/", 1)[-1].endswith(".crc") else f.rsplit("/", 1)[0] + "/" + f.rsplit("/", 1)[-1][1:-4] for f in on_disk}
    assert owners <= _referenced_by_snapshots(table)
    assert tombstones.table == "silver.orders__tombstones" and tombstones.skipped is None
    # A second run has nothing left to do.
    (again, _) = table_store.maintain(ORDERS, MAINTENANCE, policy=POLICY, now=LATER)
    assert not again.changed and again.files_compacted == 0


def test_a_compaction_snapshot_changes_no_gold_day(table_store):
    _small_merges(table_store, rounds=6)
    seq = table_store.current_seq(ORDERS)
    table_store.maintain(ORDERS, MAINTENANCE, policy=POLICY, now=LATER)
    assert table_store.current_seq(ORDERS) > seq  # maintenance committed
    changes = source_changes(table_store, ORDERS, seq, "created_at")
    assert changes and all(change.days == frozenset() for change in changes)


def test_dry_run_changes_nothing_and_says_what_it_would_do(table_store):
    _small_merges(table_store, rounds=12)
    table = table_store.load_table(ORDERS)
    stray = _stray_file(table_store, table)
    listed = {f.path for f in _files_under(table_store, table)}
    (report, _) = table_store.maintain(ORDERS, MAINTENANCE, policy=POLICY, now=LATER, dry_run=True)
    assert table.refresh().metadata_location == table.metadata_location
    assert {f.path for f in _files_under(table_store, table)} == listed and stray in listed
    assert report.dry_run and report.files_compacted >= 2 and report.snapshots_expired > 0 and report.orphan_files_deleted >= 1
    assert any(a.startswith("compact ") for a in report.actions) and any(a.startswith("expire ") for a in report.actions)


def test_a_file_younger_than_the_orphan_age_is_never_deleted(table_store):
    _small_merges(table_store, rounds=3)
    table = table_store.load_table(ORDERS)
    stray = _stray_file(table_store, table)
    (report, _) = table_store.maintain(ORDERS, MAINTENANCE, policy=POLICY)  # now: the stray file is seconds old
    assert report.orphan_files_deleted == 0
    assert _norm(stray) in {_norm(f.path) for f in _files_under(table_store, table)}
    (report, _) = table_store.maintain(ORDERS, MAINTENANCE, policy=POLICY, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=3.1))
    assert report.orphan_files_deleted == 1


def test_snapshots_a_gold_table_has_yet_to_read_are_kept(table_store):
    _small_merges(table_store, rounds=4)
    through = table_store.current_seq(ORDERS)
    _small_merges(table_store, rounds=3, first=4)  # three changes daily_sales has not rebuilt yet
    lineage = BuiltFrom(through).property(ORDERS.qualified_name)
    row = dict(report_date=dt.date(2026, 1, 1), currency="EUR", total_orders=1, total_revenue=Decimal("1.50"), unique_customers=1)
    table_store.overwrite(DAILY_SALES, pa.Table.from_pylist([row], DAILY_SALES.arrow_schema),
                          CommitStamp(run_id="r", asset_key="gold/daily_sales", table_properties=lineage))
    table_store.maintain(ORDERS, MAINTENANCE, policy=MaintenancePolicy(keep_snapshots=1, keep_snapshot_days=0), now=LATER)
    unread = source_changes(table_store, ORDERS, through, "created_at")
    assert len([c for c in unread if c.days]) == 3  # each still says which day it changed


def test_opted_out_tables_and_bronze_are_left_alone(table_store):
    _small_merges(table_store, rounds=3)
    metadata = table_store.load_table(ORDERS).metadata_location
    (report,) = table_store.maintain(ORDERS, MAINTENANCE, policy=MaintenancePolicy(enabled=False), now=LATER)
    assert report.skipped and table_store.load_table(ORDERS).metadata_location == metadata


def test_a_policy_that_would_delete_files_in_flight_is_refused():
    with pytest.raises(ValueError, match=r"orphan_file_days=1.*at least 3"):
        MaintenancePolicy(orphan_file_days=1)


@pytest.mark.parametrize("table_store", ["arrow", "spark"], indirect=True)
def test_a_merge_committed_while_compaction_runs_survives(table_store, tmp_path, monkeypatch):
    expected = _small_merges(table_store, rounds=10)
    monkeypatch.setattr(faults, "_paused", set())  # a pause happens once per process: once per test here
    monkeypatch.setenv(FAULT_VARIABLE, "pause:maintenance.before_commit@silver.orders")
    monkeypatch.setenv(FAULT_DIR_VARIABLE, str(tmp_path))
    reports: list = []
    worker = threading.Thread(target=lambda: reports.extend(table_store.maintain(ORDERS, MAINTENANCE, policy=POLICY, now=LATER)))
    worker.start()
    reached = tmp_path / f"{marker('maintenance.before_commit', 'silver.orders')}.reached"
    deadline = time.monotonic() + 120
    while not reached.exists() and time.monotonic() < deadline and worker.is_alive():
        time.sleep(0.05)
    assert reached.exists(), "compaction never reached its commit"
    table_store.merge(ORDERS, batch(event("o-new", 999), event("o-000", 998, status="shipped")), STAMP)
    (tmp_path / f"{marker('maintenance.before_commit', 'silver.orders')}.release").touch()
    worker.join(timeout=120)
    assert not worker.is_alive()
    expected.update({"o-new": ("placed", 999), "o-000": ("shipped", 998)})
    rows = table_store.read(ORDERS)
    assert state(rows) == expected and rows.num_rows == len(expected)  # both effects, nothing twice
    assert reports[0].compaction_conflicts == 1 and reports[0].files_compacted >= 2


def test_maintenance_after_30_partition_overwrites_keeps_each_day_as_last_written(table_store):
    days = [dt.date(2026, 1, d) for d in (1, 2, 3)]
    expected: dict[dt.date, int] = {}
    for i in range(30):
        day = days[i % 3]
        row = dict(report_date=day, currency="EUR", total_orders=i, total_revenue=Decimal("1.50"), unique_customers=1)
        table_store.overwrite(DAILY_SALES, pa.Table.from_pylist([row], DAILY_SALES.arrow_schema),
                              CommitStamp(run_id=f"r{i}", asset_key="gold/daily_sales", partition_key=str(day)), partition={"report_date": day})
        expected[day] = i
    table = table_store.load_table(DAILY_SALES)
    at_snapshot = {s.snapshot_id: table.scan(snapshot_id=s.snapshot_id).to_arrow().sort_by("report_date") for s in table.metadata.snapshots}
    last = at_snapshot[table.current_snapshot().snapshot_id]

    (report,) = table_store.maintain(DAILY_SALES, MAINTENANCE, policy=POLICY, now=LATER)

    table = table.refresh()
    rows = table_store.read(DAILY_SALES).to_pylist()
    assert {r["report_date"]: r["total_orders"] for r in rows} == expected and len(rows) == 3
    assert len(table.metadata.snapshots) == POLICY.keep_snapshots and report.snapshots_expired > 0 and report.expired_files_deleted > 0
    for snapshot in table.metadata.snapshots:
        # a snapshot maintenance made (Spark writes a partition in several files: compacted) holds the last write's rows
        assert table.scan(snapshot_id=snapshot.snapshot_id).to_arrow().sort_by("report_date").equals(at_snapshot.get(snapshot.snapshot_id, last))
    on_disk = {_norm(f.path) for f in _files_under(table_store, table) if not f.path.endswith(".crc")}
    assert on_disk <= _referenced_by_snapshots(table)
