"""The daily partitions start where the data does (unless LAKEHOUSE_PARTITIONS_START says
otherwise): the UI lists the days that exist, not every day since 2000, and a day before the start
is still refused with the setting to change."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pyarrow as pa
import pytest

from lakehouse.automation.partitions import DEFAULT_START, PartitionRangeError, check_days, daily_partitions
from lakehouse.contracts.tables import ORDERS
from lakehouse.definitions import build_definitions
from lakehouse.environment import table_store, with_partitions_start
from lakehouse.io.table_store import CommitStamp
from lakehouse.settings import Settings
from lakehouse.sources.sample import land_sample

FIRST_LANDING_DAY = dt.date(2026, 3, 4)


def _bronze_partitions(settings: Settings) -> list[str]:
    defs = build_definitions(settings)
    return defs.resolve_assets_def(dg.AssetKey(["bronze", "orders_raw"])).partitions_def.get_partition_keys()


def test_without_data_the_partitions_take_any_day(settings):
    assert with_partitions_start(settings).partitions_start == DEFAULT_START  # files may land on any day while it runs


def test_the_partitions_start_on_the_first_landing_day(settings):
    land_sample(settings.home / "landing", days=2, orders_per_day=5, start=FIRST_LANDING_DAY)
    keys = _bronze_partitions(settings)
    assert keys[0] == FIRST_LANDING_DAY.isoformat()
    assert keys[-1] == dt.datetime.now(dt.UTC).date().isoformat()  # through today (end_offset=1)
    assert len(keys) == (dt.datetime.now(dt.UTC).date() - FIRST_LANDING_DAY).days + 1  # not every day since 2000


def test_the_setting_wins_over_the_data(settings):
    land_sample(settings.home / "landing", days=1, orders_per_day=5, start=FIRST_LANDING_DAY)
    pinned = settings.model_copy(update={"partitions_start": dt.date(2025, 12, 1)})
    assert _bronze_partitions(pinned)[0] == "2025-12-01"


def test_orders_created_before_the_first_landing_day_move_the_start_back(settings):
    land_sample(settings.home / "landing", days=1, orders_per_day=5, start=FIRST_LANDING_DAY)
    created = dt.datetime(2026, 2, 20, 23, 30, tzinfo=dt.UTC)
    row = {"order_id": "o-early", "customer_id": "c1", "status": "placed", "amount": 1, "currency": "EUR", "created_at": created,
           "updated_at": created, "lsn": 1, "_source_file": "orders/dt=2026-03-04/x.jsonl", "_ingested_at": created, "_batch_id": "b"}
    store = table_store(settings).get_store()
    store.write(ORDERS, pa.Table.from_pylist([row], schema=ORDERS.arrow_schema), CommitStamp("r", "silver/orders"))
    assert store.earliest_day(ORDERS, "created_at") == dt.date(2026, 2, 20)  # from the files' column statistics
    assert with_partitions_start(settings).partitions_start == dt.date(2026, 2, 20)


def test_a_day_before_the_start_is_refused_naming_the_setting_and_the_reload():
    partitions = daily_partitions(FIRST_LANDING_DAY)
    with pytest.raises(PartitionRangeError, match=r"2026-03-01 is before the first daily partition, 2026-03-04 .*LAKEHOUSE_PARTITIONS_START.*reload"):
        check_days([dt.date(2026, 3, 1)], partitions, "landing day")
