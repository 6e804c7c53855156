"""Sensors and the schedule, evaluated directly: what they request and how their cursors move."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import pytest

from lakehouse.assets import all_assets
from lakehouse.automation.planning import INGEST_JOB, PIPELINE_TAG, plan_gold, publish_requests
from lakehouse.automation.schedules import ingest_schedule
from lakehouse.automation.sensors import gold_sensor, landing_sensor
from lakehouse.contracts.tables import ORDERS_RAW
from lakehouse.environment import resources_for
from lakehouse.settings import Settings


def land(settings: Settings, source: str, day: str, name: str, text: str) -> str:
    folder = settings.home / "landing" / source / f"dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return f"{source}/dt={day}/{name}"


@pytest.fixture
def env(settings):
    resources = resources_for(settings)
    return settings, {"landing": resources["landing"], "store": resources["store"]}


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
    assert set(json.loads(result.cursor)) == {"orders/dt=2026-01-01/a.jsonl", "orders/dt=2026-01-02/b.jsonl", "customers/dt=2026-01-05/c.csv"}


def test_landing_sensor_cursor_advances_only_with_a_request(env):
    settings, resources = env
    first = evaluate(resources)
    assert not first.run_requests and json.loads(first.cursor) == []
    path = land(settings, "orders", "2026-01-01", "a.jsonl", "{}\n")
    second = evaluate(resources, cursor=first.cursor)
    assert len(second.run_requests) == 1 and json.loads(second.cursor) == [path]
    # Evaluated again before the run ingests the file: nothing new is requested, the file stays pending.
    third = evaluate(resources, cursor=second.cursor)
    assert not third.run_requests and json.loads(third.cursor) == [path]


def test_landing_sensor_drops_ingested_files_from_its_cursor(env):
    settings, resources = env
    path = land(settings, "orders", "2026-01-01", "a.jsonl", '{"x": 1}\n')
    requested = evaluate(resources)
    orders_raw = next(a for a in all_assets() if a.key == ORDERS_RAW.asset_key)
    assert dg.materialize([orders_raw], partition_key="2026-01-01", resources=resources_for(settings)).success
    assert path in resources["store"].get_store().ingested_sources(ORDERS_RAW)
    after = evaluate(resources, cursor=requested.cursor)
    assert json.loads(after.cursor) == [] and not after.run_requests


def test_schedule_requests_what_is_not_in_bronze_and_skips_otherwise(env):
    settings, resources = env
    context = dg.build_schedule_context(resources=resources, scheduled_execution_time=dt.datetime(2026, 1, 3, 1, 15, tzinfo=dt.timezone.utc))
    assert isinstance(ingest_schedule(context), dg.SkipReason)
    land(settings, "orders", "2026-01-02", "a.jsonl", "{}\n")
    requests = ingest_schedule(context)
    assert [r.tags["dagster/asset_partition_range_start"] for r in requests] == ["2026-01-02"]


def _silver_materialization(instance, days: list[str], committed: bool = True):
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=["silver", "orders"], metadata={"changed_created_at": dg.MetadataValue.json(days), "committed": committed}
        )
    )


def _gold_materialization(instance, day: str):
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=["gold", "daily_sales"], partition=day))


def test_gold_plan_holds_exactly_the_days_silver_changed_since_they_were_built():
    instance = dg.DagsterInstance.ephemeral()
    _silver_materialization(instance, ["2026-01-01", "2026-01-02", "2026-01-05"])
    _gold_materialization(instance, "2026-01-02")
    plan = plan_gold(instance)
    assert plan.report_dates == [dt.date(2026, 1, 1), dt.date(2026, 1, 5)] and plan.summary_stale
    _gold_materialization(instance, "2026-01-01")
    _gold_materialization(instance, "2026-01-05")
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=["gold", "customer_summary"]))
    plan = plan_gold(instance)
    assert plan.report_dates == [] and not plan.summary_stale
    _silver_materialization(instance, [], committed=False)  # a no-op merge changes nothing downstream
    assert not plan_gold(instance).summary_stale
    _silver_materialization(instance, ["2026-01-03"], committed=False)  # audit failed: main did not move
    assert plan_gold(instance).report_dates == []
    _silver_materialization(instance, ["2026-01-02"])
    assert plan_gold(instance).report_dates == [dt.date(2026, 1, 2)]


def test_publish_requests_group_consecutive_days_and_carry_the_summary_once():
    instance = dg.DagsterInstance.ephemeral()
    _silver_materialization(instance, ["2026-01-01", "2026-01-02", "2026-01-05"])
    requests = publish_requests(plan_gold(instance))
    assert [(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"]) for r in requests] == [
        ("2026-01-01", "2026-01-02"),
        ("2026-01-05", "2026-01-05"),
    ]
    assert [len(r.asset_selection) for r in requests] == [2, 1]


def test_gold_sensor_requests_once_per_silver_change():
    instance = dg.DagsterInstance.ephemeral()
    _silver_materialization(instance, ["2026-01-03"])
    first = gold_sensor(dg.build_sensor_context(instance=instance))
    assert [r.tags["dagster/asset_partition_range_start"] for r in first.run_requests] == ["2026-01-03"]
    again = gold_sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor))
    assert isinstance(again, dg.SkipReason)
