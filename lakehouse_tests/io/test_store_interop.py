"""The two stores on one catalog: a table created and written by either is read, merged and
overwritten by the other, the merge rules (tombstones included) carry across, and Spark itself
reads what the Arrow store wrote and the other way round."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from lakehouse.contracts.tables import DAILY_SALES, ORDERS
from lakehouse.io.table_store import CommitStamp
from lakehouse_tests.conftest import ICEBERG_JARS, make_store
from lakehouse_tests.io.cdc import batch, event, state

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ICEBERG_JARS, reason="the Iceberg Spark runtime is not in .jars (jars/pom.xml fetches it)"),
]

D1, D2 = dt.date(2026, 1, 1), dt.date(2026, 1, 2)


def stamp(run: str) -> CommitStamp:
    return CommitStamp(run_id=run, asset_key="silver/orders", code_version="cv")


def sales(day: dt.date, currency: str, orders: int) -> dict:
    return {"report_date": day, "currency": currency, "total_orders": orders, "total_revenue": Decimal("1.00"), "unique_customers": 1}


@pytest.fixture
def stores(tmp_path, spark):
    home = tmp_path / "home"
    return {"arrow": make_store(home), "spark": make_store(home, "spark", spark)}


@pytest.mark.parametrize("first", ["arrow", "spark"])
def test_either_store_carries_on_a_table_the_other_created(stores, spark, first):
    one, other = stores[first], stores["spark" if first == "arrow" else "arrow"]
    one.merge(ORDERS, batch(event("a", 1), event("b", 1), event("c", 1)), stamp("r1"))
    # The other store updates, deletes, and must not let an older event resurrect the deleted key.
    other.merge(ORDERS, batch(event("a", 2, status="paid"), event("b", 3, delete=True)), stamp("r2"))
    one.merge(ORDERS, batch(event("b", 2), event("c", 4, status="shipped")), stamp("r3"))  # b: older than its delete
    other.merge(ORDERS, batch(event("b", 5)), stamp("r4"))  # a genuinely newer re-insert
    expected = {"a": ("paid", 2), "b": ("placed", 5), "c": ("shipped", 4)}
    assert state(one.read(ORDERS)) == state(other.read(ORDERS)) == expected
    seen_by_spark = {r["order_id"]: (r["status"], r["lsn"]) for r in spark.sql(f"SELECT * FROM {stores['spark'].spark_name(ORDERS)}").collect()}
    assert seen_by_spark == expected
    table = one.load_table(ORDERS)
    snapshots = [table.snapshot_by_id(h.snapshot_id).summary for h in table.history()]
    # Every commit stamped, by both stores; only the empty first snapshot a branch needs (made
    # before the Spark store's first write) has no stamp, and no rows.
    assert [s.get("dagster.run-id") for s in snapshots if s.get("dagster.run-id")] == ["r1", "r2", "r3", "r4"]
    assert all(s.get("total-records") == "0" for s in snapshots if not s.get("dagster.run-id"))


@pytest.mark.parametrize("first", ["arrow", "spark"])
def test_either_store_overwrites_a_partition_the_other_wrote_and_leaves_the_rest(stores, first):
    one, other = stores[first], stores["spark" if first == "arrow" else "arrow"]
    one.overwrite(DAILY_SALES, pa.Table.from_pylist([sales(D1, "EUR", 1), sales(D2, "EUR", 2)]), stamp("g1"))
    d1_files = {f.file.file_path for f in one.load_table(DAILY_SALES).scan().plan_files() if "report_date=2026-01-01" in f.file.file_path}
    other.overwrite(DAILY_SALES, pa.Table.from_pylist([sales(D2, "USD", 7)]), stamp("g2"), partition={"report_date": D2})
    rows = sorted((r["report_date"], r["currency"], r["total_orders"]) for r in one.read(DAILY_SALES).to_pylist())
    assert rows == [(D1, "EUR", 1), (D2, "USD", 7)]
    after = {f.file.file_path for f in other.load_table(DAILY_SALES).scan().plan_files()}
    assert d1_files and d1_files <= after


def test_an_audit_started_by_one_store_is_written_by_the_spark_store_and_published(stores):
    arrow, spark_store = stores["arrow"], stores["spark"]
    arrow.merge(ORDERS, batch(event("a", 1)), stamp("r1"))
    base = arrow.start_audit(ORDERS, "audit-x")
    result = spark_store.merge(ORDERS, batch(event("a", 2, status="paid"), event("z", 1)), stamp("r2"), branch="audit-x")
    assert state(arrow.read(ORDERS)) == {"a": ("placed", 1)}  # main unchanged until the publish
    arrow.publish(ORDERS, "audit-x", {"lakehouse.applied.bronze.orders_raw": '{"seq": 7}'}, base=base, head=result.snapshot_id)
    assert state(spark_store.read(ORDERS)) == {"a": ("paid", 2), "z": ("placed", 1)}
    assert spark_store.info(ORDERS).properties["lakehouse.applied.bronze.orders_raw"] == '{"seq": 7}'
