"""Sensors and the schedule, evaluated directly: what they request and how their cursors move."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import dagster as dg
import pyarrow as pa
import pytest

from lakehouse.assets import all_assets
from lakehouse.automation.planning import INGEST_JOB, PIPELINE_TAG, plan_gold, publish_requests
from lakehouse.automation.schedules import ingest_schedule
from lakehouse.automation.sensors import gold_sensor, landing_sensor
from lakehouse.contracts.tables import CUSTOMER_SUMMARY, CUSTOMERS, DAILY_SALES, ORDERS, ORDERS_RAW
from lakehouse.environment import resources_for
from lakehouse.io.table_store import CommitStamp
from lakehouse.io.watermarks import BuiltFrom, built_from_properties
from lakehouse.settings import Settings
from lakehouse_tests.io.cdc import batch, event


def land(settings: Settings, source: str, day: str, name: str, text: str) -> str:
    folder = settings.home / "landing" / source / f"dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return f"{source}/dt={day}/{name}"


@pytest.fixture
def env(settings):
    resources = resources_for(settings)
    return settings, {k: resources[k] for k in ("landing", "store", "partitions", "dbt")}


def evaluate(resources, cursor=None, instance=None):
    context = dg.build_sensor_context(cursor=cursor, resources=resources, instance=instance or dg.DagsterInstance.ephemeral())
    return landing_sensor(context)


def test_landing_sensor_requests_one_run_per_range_of_new_days(env):
    settings, resources = env
    land(settings, "orders", "2026-01-01", "a.jsonl", "{}\n")
    land(settings, "orders", "2026-01-02", "b.jsonl", "{}\n")
    land(settings, "customers", "2026-01-05", "c.csv", "customer_id,name,email,country,updated_at\n")
    result = evaluate(resources)
    ranges = [(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"]) for r in result.run_requests]
    assert ranges == [("2026-01-01", "2026-01-02"), ("2026-01-05", "2026-01-05")]
    assert all(r.job_name == INGEST_JOB and r.tags[PIPELINE_TAG] == INGEST_JOB for r in result.run_requests)
    cursor = json.loads(result.cursor)
    assert set(cursor["requested"]) == {"orders/dt=2026-01-01/a.jsonl", "orders/dt=2026-01-02/b.jsonl", "customers/dt=2026-01-05/c.csv"}
    assert cursor["newest_day"] == "2026-01-05"


def test_landing_sensor_cursor_advances_only_with_a_request(env):
    settings, resources = env
    first = evaluate(resources)
    assert not first.run_requests and json.loads(first.cursor)["requested"] == []
    path = land(settings, "orders", "2026-01-01", "a.jsonl", "{}\n")
    second = evaluate(resources, cursor=first.cursor)
    assert len(second.run_requests) == 1 and json.loads(second.cursor)["requested"] == [path]
    # Evaluated again before the run ingests the file: nothing new is requested, the file stays pending.
    third = evaluate(resources, cursor=second.cursor)
    assert not third.run_requests and json.loads(third.cursor)["requested"] == [path]


def test_landing_sensor_drops_ingested_files_from_its_cursor(env):
    settings, resources = env
    land(settings, "orders", "2026-01-01", "a.jsonl", '{"x": 1}\n')
    requested = evaluate(resources)
    orders_raw = next(a for a in all_assets() if ORDERS_RAW.asset_key in a.keys)
    assert dg.materialize([orders_raw], partition_key="2026-01-01", resources=resources_for(settings)).success
    assert "dt=2026-01-01/a.jsonl" in resources["store"].get_store().ingested_sources(ORDERS_RAW)
    after = evaluate(resources, cursor=requested.cursor)
    assert json.loads(after.cursor)["requested"] == []
    # Bronze alone was materialized: the sensor now asks for a Silver run to catch up.
    (catch_up,) = after.run_requests
    assert catch_up.job_name == INGEST_JOB and {k.to_user_string() for k in catch_up.asset_selection} >= {"silver/orders", "silver/orders_rejects"}


def test_landing_sensor_lists_only_recent_days_and_the_schedule_all(env):
    settings, resources = env
    land(settings, "orders", "2026-01-10", "a.jsonl", "{}\n")
    first = evaluate(resources)
    old = land(settings, "orders", "2026-01-01", "late.jsonl", "{}\n")  # into an old day's folder
    recent = land(settings, "orders", "2026-01-09", "b.jsonl", "{}\n")
    second = evaluate(resources, cursor=first.cursor)
    assert set(json.loads(second.cursor)["requested"]) == {"orders/dt=2026-01-10/a.jsonl", recent}
    context = dg.build_schedule_context(resources=resources, scheduled_execution_time=dt.datetime(2026, 1, 10, 1, 15, tzinfo=dt.UTC))
    starts = [r.tags["dagster/asset_partition_range_start"] for r in ingest_schedule(context)]
    assert "2026-01-01" in starts and old.startswith("orders/dt=2026-01-01")


def test_landing_sensor_skips_days_outside_the_partitions_and_requests_the_rest(tmp_path):
    settings = Settings(home=tmp_path / "lakehouse", partitions_start=dt.date(2026, 1, 2))
    resources = resources_for(settings)
    land(settings, "orders", "2026-01-01", "early.jsonl", "{}\n")
    land(settings, "orders", "2026-01-03", "ok.jsonl", "{}\n")
    result = evaluate({"landing": resources["landing"], "store": resources["store"], "partitions": resources["partitions"]})
    assert [r.tags["dagster/asset_partition_range_start"] for r in result.run_requests] == ["2026-01-03"]


def test_schedule_requests_what_is_not_in_bronze_and_skips_otherwise(env):
    settings, resources = env
    context = dg.build_schedule_context(resources=resources, scheduled_execution_time=dt.datetime(2026, 1, 3, 1, 15, tzinfo=dt.UTC))
    assert isinstance(ingest_schedule(context), dg.SkipReason)
    land(settings, "orders", "2026-01-02", "a.jsonl", "{}\n")
    requests = ingest_schedule(context)
    assert [r.tags["dagster/asset_partition_range_start"] for r in requests] == ["2026-01-02"]


def _merge_orders(store, *created: tuple[str, int, dt.date]) -> None:
    """Merge one order event per (order_id, lsn, creation day) into silver/orders: no Dagster involved."""
    events = []
    for order_id, lsn, day in created:
        e = event(order_id, lsn)
        e["created_at"] = dt.datetime.combine(day, dt.time(12), dt.UTC)
        events.append(e)
    store.merge(ORDERS, batch(*events), CommitStamp(run_id="r", asset_key="silver/orders"))


def _build_daily_sales(store, *days: dt.date) -> None:
    """What a publish run commits: the rebuilt days' rows and how far Gold is rebuilt from Silver."""
    lineage = built_from_properties(store.info(DAILY_SALES).properties, store, [ORDERS], list(days), (ORDERS, "created_at"))
    rows = pa.Table.from_pylist(
        [dict(report_date=d, currency="EUR", total_orders=1, total_revenue=Decimal("1.00"), unique_customers=1) for d in days],
        schema=DAILY_SALES.arrow_schema,
    )
    stamp = CommitStamp(run_id="r", asset_key="gold/daily_sales", table_properties=lineage)
    store.overwrite(DAILY_SALES, rows, stamp, partition={"report_date": list(days)})


def _build_summary(store) -> None:
    lineage = built_from_properties(store.info(CUSTOMER_SUMMARY).properties, store, [ORDERS, CUSTOMERS], None)
    store.overwrite(CUSTOMER_SUMMARY, CUSTOMER_SUMMARY.arrow_schema.empty_table(), CommitStamp(run_id="r", asset_key="gold/customer_summary", table_properties=lineage))


J1, J2, J3, J5 = (dt.date(2026, 1, d) for d in (1, 2, 3, 5))


def test_gold_plan_holds_exactly_the_days_silver_changed_since_they_were_built(table_store):
    _merge_orders(table_store, ("a", 1, J1), ("b", 1, J2), ("c", 1, J5))
    plan = plan_gold(table_store)
    assert plan.report_dates == [J1, J2, J5] and plan.summary_stale
    _build_daily_sales(table_store, J2)
    assert plan_gold(table_store).report_dates == [J1, J5]
    _build_daily_sales(table_store, J1)
    _build_daily_sales(table_store, J5)
    _build_summary(table_store)
    plan = plan_gold(table_store)
    assert plan.report_dates == [] and not plan.summary_stale
    _merge_orders(table_store, ("a", 1, J1))  # re-delivered: the merge changes nothing, no snapshot
    assert plan_gold(table_store).report_dates == [] and not plan_gold(table_store).summary_stale
    _merge_orders(table_store, ("b", 2, J3))  # order b moves from day 2 to day 3: both change
    assert plan_gold(table_store).report_dates == [J2, J3] and plan_gold(table_store).summary_stale


def test_gold_plan_ignores_an_audit_that_was_not_published(table_store):
    _merge_orders(table_store, ("a", 1, J1))
    _build_daily_sales(table_store, J1)
    branch = "audit-test"
    table_store.start_audit(ORDERS, branch)
    e = event("z", 1)
    table_store.merge(ORDERS, batch(e), CommitStamp(run_id="r2", asset_key="silver/orders"), branch=branch)
    assert plan_gold(table_store).report_dates == []  # main did not move


def test_gold_plan_keeps_its_bookkeeping_small(table_store):
    """Built-from keeps only the days rebuilt ahead of its low-water mark."""
    for i in range(1, 8):
        _merge_orders(table_store, (f"o{i}", 1, dt.date(2026, 1, i)))
        _build_daily_sales(table_store, dt.date(2026, 1, i))
    built = BuiltFrom.parse(table_store.info(DAILY_SALES).properties, ORDERS.qualified_name)
    assert built.through == table_store.current_seq(ORDERS) and built.days == {}


def test_publish_requests_group_consecutive_days_and_carry_the_summary_once(table_store):
    _merge_orders(table_store, ("a", 1, J1), ("b", 1, J2), ("c", 1, J5))
    requests = publish_requests(plan_gold(table_store))
    assert [(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"]) for r in requests] == [
        ("2026-01-01", "2026-01-02"),
        ("2026-01-05", "2026-01-05"),
    ]
    assert [len(r.asset_selection) for r in requests] == [2, 1]


def test_gold_sensor_requests_once_per_silver_version(env):
    settings, resources = env
    store = resources["store"].get_store()
    _merge_orders(store, ("a", 1, J3))
    first = gold_sensor(dg.build_sensor_context(resources={k: resources[k] for k in ("store", "partitions", "dbt")}))
    assert [r.tags["dagster/asset_partition_range_start"] for r in first.run_requests] == ["2026-01-03"]
    # the dbt models on silver/orders were never built: they ride on the first publish run; the one
    # that also reads silver/customers waits for that table to exist
    on_orders = {m.contract.asset_key for m in resources["dbt"].models() if {s.name for s in m.silver_sources} == {"orders"}}
    assert on_orders == {dg.AssetKey(["gold", "order_status_daily"]), dg.AssetKey(["gold", "order_fulfilment_daily"])}
    dbt_keys = {m.contract.asset_key for m in resources["dbt"].models()}
    assert dbt_keys & set(first.run_requests[0].asset_selection) == on_orders
    again = gold_sensor(dg.build_sensor_context(resources={k: resources[k] for k in ("store", "partitions", "dbt")}))
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in first.run_requests]  # Dagster skips a known run key
    _merge_orders(store, ("a", 2, J3))
    third = gold_sensor(dg.build_sensor_context(resources={k: resources[k] for k in ("store", "partitions", "dbt")}))
    assert third.run_requests[0].run_key != first.run_requests[0].run_key


def test_a_gold_table_first_built_after_silver_history_expired_still_covers_every_day(table_store):
    from lakehouse.contracts.maintenance import MaintenancePolicy

    for i, day in enumerate((J1, J2, J5)):  # one merge per day, no Gold table reads Silver yet
        _merge_orders(table_store, (f"o{i}", 1, day))
    _merge_orders(table_store, ("o0", 2, J1))  # an update of J1, the newest change
    table_store.maintain(ORDERS, CommitStamp(run_id="m", asset_key="maintenance/silver"),
                         policy=MaintenancePolicy(keep_snapshots=1, keep_snapshot_days=0), now=dt.datetime.now(dt.UTC))
    assert [seq for seq, _ in table_store.history(ORDERS)] == [table_store.current_seq(ORDERS)]  # one snapshot left
    plan = plan_gold(table_store)
    assert plan.report_dates == [J1, J2, J5] and plan.summary_stale
