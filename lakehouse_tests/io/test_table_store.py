"""The write semantics, tested once against every table-store implementation that runs here."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest
from pyiceberg.table import Transaction

from lakehouse.contracts.model import ContractViolation
from lakehouse.contracts.tables import DAILY_SALES, ORDERS, ORDERS_REJECTS
from lakehouse.io.table_store import CommitStamp
from lakehouse_tests.io.cdc import T0, batch, event, state

STAMP = CommitStamp(run_id="run-0001", asset_key="silver/orders", partition_key=None, code_version="cv1")


def sales(day: dt.date, currency: str, orders: int) -> dict:
    return dict(report_date=day, currency=currency, total_orders=orders, total_revenue=Decimal("1.50"), unique_customers=1)


D1, D2 = dt.date(2026, 1, 1), dt.date(2026, 1, 2)


# Bronze appends: lakehouse_tests/io/test_bronze_files.py


# ---- merge (Silver) ------------------------------------------------------------------------
def test_merge_inserts_updates_deletes_and_ignores_older_events(table_store):
    table_store.merge(ORDERS, batch(event("a", 1), event("b", 2), event("c", 3)), STAMP)
    result = table_store.merge(
        ORDERS, batch(event("a", 5, status="paid"), event("b", 4, delete=True), event("c", 1, status="paid"), event("d", 1)), STAMP
    )
    assert result.counts == {"inserted": 1, "updated": 1, "deleted": 1, "ignored": 1}
    assert state(table_store.read(ORDERS)) == {"a": ("paid", 5), "c": ("placed", 3), "d": ("placed", 1)}
    assert result.row_count == 3


def test_merge_applied_twice_is_idempotent(table_store):
    cdc = batch(event("a", 1), event("b", 2), event("b", 3, delete=True), event("c", 4))
    first = table_store.merge(ORDERS, cdc, STAMP)
    second = table_store.merge(ORDERS, cdc, STAMP)
    assert not second.committed and second.snapshot_id == first.snapshot_id
    assert second.counts["ignored"] == 3  # a, b (delete already applied), c
    assert state(table_store.read(ORDERS)) == {"a": ("placed", 1), "c": ("placed", 4)}


def test_late_event_does_not_resurrect_a_deleted_key_but_a_newer_one_reinserts(table_store):
    table_store.merge(ORDERS, batch(event("a", 1), event("a", 3, delete=True)), STAMP)
    table_store.merge(ORDERS, batch(event("a", 2, status="paid")), STAMP)  # late, older than the delete
    assert state(table_store.read(ORDERS)) == {}
    table_store.merge(ORDERS, batch(event("a", 4, status="shipped")), STAMP)  # genuine re-insert
    assert state(table_store.read(ORDERS)) == {"a": ("shipped", 4)}


def test_duplicate_keys_in_one_batch_resolve_to_highest_sequence(table_store):
    table_store.merge(ORDERS, batch(event("a", 7, status="paid"), event("a", 9, status="shipped"), event("a", 8)), STAMP)
    assert state(table_store.read(ORDERS)) == {"a": ("shipped", 9)}


def test_merge_without_sequence_keeps_existing_rows(table_store):
    def reject(rid: str, reason: str) -> dict:
        return dict(record_id=rid, reason=reason, _raw="x", _line_number=1, _source_file="f", _ingested_at=T0, _batch_id="b")

    table_store.merge(ORDERS_REJECTS, pa.Table.from_pylist([reject("f:1", "first")]), STAMP)
    table_store.merge(ORDERS_REJECTS, pa.Table.from_pylist([reject("f:1", "second"), reject("f:2", "x")]), STAMP)
    assert sorted((r["record_id"], r["reason"]) for r in table_store.read(ORDERS_REJECTS).to_pylist()) == [("f:1", "first"), ("f:2", "x")]


def test_merge_stamps_the_snapshot_with_run_asset_and_code_version(table_store):
    table_store.merge(ORDERS, batch(event("a", 1), event("b", 1)), STAMP)
    table_store.merge(ORDERS, batch(event("a", 2)), STAMP)
    summary = table_store.info(ORDERS).summary
    assert summary["dagster.run-id"] == "run-0001" and summary["dagster.asset-key"] == "silver/orders"
    assert summary["dagster.code-version"] == "cv1" and summary["lakehouse.rows-updated"] == "1"


def crash_commit(table_store, monkeypatch, number: int, message: str) -> None:
    """Make the store's ``number``-th data commit from now on raise (a process killed mid-commit):
    pyiceberg's transaction commit in the Arrow store, a Spark SQL commit in the Spark store."""
    from lakehouse.io.spark_store import SparkTableStore

    owner, name = (SparkTableStore, "_sql_with_summary") if isinstance(table_store, SparkTableStore) else (Transaction, "commit_transaction")
    original = getattr(owner, name)
    calls = {"n": 0}

    def crash(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == number:
            raise RuntimeError(message)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, crash)


def test_failed_merge_leaves_the_previous_snapshot_current(table_store, monkeypatch):
    table_store.merge(ORDERS, batch(event("a", 1), event("b", 2)), STAMP)
    before = table_store.info(ORDERS).snapshot_id
    crash_commit(table_store, monkeypatch, 1, "killed mid-commit")
    with pytest.raises(RuntimeError, match="killed mid-commit"):
        table_store.merge(ORDERS, batch(event("a", 5, status="paid"), event("b", 6, delete=True)), STAMP)
    monkeypatch.undo()
    assert table_store.info(ORDERS).snapshot_id == before
    assert state(table_store.read(ORDERS)) == {"a": ("placed", 1), "b": ("placed", 2)}


def test_merge_that_fails_after_tombstones_still_deletes_on_retry(table_store, monkeypatch):
    """Tombstones commit first; a crash before the main commit must not make the retry a no-op."""
    table_store.merge(ORDERS, batch(event("a", 1)), STAMP)
    crash_commit(table_store, monkeypatch, 2, "killed between commits")
    with pytest.raises(RuntimeError):
        table_store.merge(ORDERS, batch(event("a", 2, delete=True)), STAMP)
    monkeypatch.undo()
    assert state(table_store.read(ORDERS)) == {"a": ("placed", 1)}
    table_store.merge(ORDERS, batch(event("a", 2, delete=True)), STAMP)
    assert state(table_store.read(ORDERS)) == {}


def test_merge_refuses_output_that_breaks_the_contract(table_store):
    bad = batch(event("a", 1)).drop_columns(["currency"])
    with pytest.raises(ContractViolation, match="silver/orders: output is missing column"):
        table_store.merge(ORDERS, bad, STAMP)
    assert table_store.info(ORDERS).snapshot_id is None


# ---- overwrite (Gold) ----------------------------------------------------------------------
def test_overwrite_replaces_the_whole_table(table_store):
    table_store.overwrite(DAILY_SALES, pa.Table.from_pylist([sales(D1, "EUR", 1), sales(D2, "EUR", 2)]), STAMP)
    table_store.overwrite(DAILY_SALES, pa.Table.from_pylist([sales(D2, "USD", 3)]), STAMP)
    rows = table_store.read(DAILY_SALES).to_pylist()
    assert [(r["report_date"], r["currency"], r["total_orders"]) for r in rows] == [(D2, "USD", 3)]


def test_partition_overwrite_replaces_only_that_partition(table_store):
    table_store.overwrite(DAILY_SALES, pa.Table.from_pylist([sales(D1, "EUR", 1), sales(D2, "EUR", 2)]), STAMP)
    table = table_store.load_table(DAILY_SALES)
    d1_files = {f.file.file_path for f in table.scan().plan_files() if "report_date=2026-01-01" in f.file.file_path}
    table_store.overwrite(DAILY_SALES, pa.Table.from_pylist([sales(D2, "USD", 5)]), STAMP, partition={"report_date": D2})
    rows = sorted((r["report_date"], r["currency"], r["total_orders"]) for r in table_store.read(DAILY_SALES).to_pylist())
    assert rows == [(D1, "EUR", 1), (D2, "USD", 5)]
    after = {f.file.file_path for f in table_store.load_table(DAILY_SALES).scan().plan_files()}
    assert d1_files and d1_files <= after  # the other day's data files are untouched


def test_partition_overwrite_refuses_rows_outside_the_partition(table_store):
    with pytest.raises(ContractViolation, match="1 row\\(s\\) fall outside partition report_date=2026-01-02"):
        table_store.overwrite(DAILY_SALES, pa.Table.from_pylist([sales(D1, "EUR", 1)]), STAMP, partition={"report_date": D2})


def test_merge_reports_old_and_new_values_of_change_columns(table_store):
    day = lambda d: T0 + dt.timedelta(days=d)  # noqa: E731
    first = [event("a", 1), event("b", 2), event("c", 3)]
    for e, d in zip(first, (0, 1, 2)):
        e["created_at"] = day(d)
    table_store.merge(ORDERS, batch(*first), STAMP)
    moved = event("a", 5)
    moved["created_at"] = day(7)
    result = table_store.merge(ORDERS, batch(moved, event("b", 6, delete=True), event("c", 1)), STAMP)
    # a moved from day 0 to day 7, b (day 1) was deleted, c's older event changed nothing
    assert result.changed == {"created_at": [day(0).date(), day(1).date(), day(7).date()]}


def test_table_properties_commit_with_the_data(table_store):
    stamp = CommitStamp(run_id="r", asset_key="silver/orders", table_properties={"lakehouse.applied": "x"})
    result = table_store.merge(ORDERS, batch(event("a", 1)), stamp)
    assert table_store.info(ORDERS).properties["lakehouse.applied"] == "x"
    # A batch that changes no row still records its watermark.
    stamp2 = CommitStamp(run_id="r", asset_key="silver/orders", table_properties={"lakehouse.applied": "y"})
    table_store.merge(ORDERS, batch(event("a", 1)), stamp2)
    info = table_store.info(ORDERS)
    assert info.properties["lakehouse.applied"] == "y" and info.snapshot_id == result.snapshot_id


# ---- write-audit-publish --------------------------------------------------------------------
def test_audit_branch_write_leaves_main_until_published(table_store):
    table_store.merge(ORDERS, batch(event("a", 1)), STAMP)
    main_before = table_store.info(ORDERS).snapshot_id
    assert table_store.start_audit(ORDERS, "audit") == main_before
    result = table_store.merge(ORDERS, batch(event("a", 2, status="paid"), event("b", 3)), STAMP, branch="audit")
    assert result.branch == "audit" and result.snapshot_id != main_before
    assert table_store.info(ORDERS).snapshot_id == main_before
    assert state(table_store.read(ORDERS)) == {"a": ("placed", 1)}
    assert sorted(table_store.key_matches(ORDERS, pa.array(["a", "b"]), branch="audit").to_pylist()) == ["a", "b"]
    assert table_store.key_matches(ORDERS, pa.array(["b"])).to_pylist() == []  # not on main
    table_store.publish(ORDERS, "audit", {"lakehouse.applied.x": "[1]"}, base=main_before, head=result.snapshot_id)
    info = table_store.info(ORDERS)
    assert info.snapshot_id == result.snapshot_id and info.properties["lakehouse.applied.x"] == "[1]"
    assert state(table_store.read(ORDERS)) == {"a": ("paid", 2), "b": ("placed", 3)}
    assert set(table_store.load_table(ORDERS).refs()) == {"main"}  # the published branch is removed


def test_publish_refuses_when_main_moved_meanwhile(table_store):
    from pyiceberg.exceptions import CommitFailedException

    table_store.merge(ORDERS, batch(event("a", 1)), STAMP)
    base = table_store.start_audit(ORDERS, "audit")
    head = table_store.merge(ORDERS, batch(event("b", 2)), STAMP, branch="audit").snapshot_id
    table_store.merge(ORDERS, batch(event("c", 3)), STAMP)  # another writer commits to main
    moved = table_store.info(ORDERS).snapshot_id
    with pytest.raises(CommitFailedException, match="main moved from snapshot"):
        table_store.publish(ORDERS, "audit", {}, base=base, head=head)
    assert table_store.info(ORDERS).snapshot_id == moved
    assert state(table_store.read(ORDERS)) == {"a": ("placed", 1), "c": ("placed", 3)}


def test_a_new_audit_replaces_the_previous_branch(table_store):
    table_store.merge(ORDERS, batch(event("a", 1)), STAMP)
    table_store.start_audit(ORDERS, "audit")
    table_store.merge(ORDERS, batch(event("bad", 2)), STAMP, branch="audit")
    table_store.start_audit(ORDERS, "audit")
    assert table_store.key_matches(ORDERS, pa.array(["bad"]), branch="audit").to_pylist() == []
