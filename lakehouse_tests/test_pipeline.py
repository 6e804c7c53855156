"""End to end in process: every asset materialized over sample data equals an independent reference."""

from __future__ import annotations

import datetime as dt
import json
import os

import dagster as dg
import pytest



from lakehouse.automation.refresh import refresh
from lakehouse.contracts import tables as t
from lakehouse.environment import resources_for
from lakehouse.settings import Settings
from lakehouse.sources.sample import land_sample
from lakehouse_tests.compare import assert_matches
from lakehouse_tests.reference import expected_state


@pytest.fixture(autouse=True)
def _isolated_env():
    """This module's runs share one home, set by the ``lakehouse`` fixture, across its tests."""


@pytest.fixture(scope="module")
def lakehouse(tmp_path_factory, spark):
    home = tmp_path_factory.mktemp("pipeline")
    saved = {k: os.environ.get(k) for k in ("LAKEHOUSE_HOME", "DAGSTER_HOME")}
    os.environ["LAKEHOUSE_HOME"] = str(home / "lakehouse")  # the reconstructed jobs read settings from here
    settings = Settings(home=home / "lakehouse")
    store = resources_for(settings)["store"].get_store()
    instance = dg.DagsterInstance.ephemeral()

    def run_refresh() -> Materializations:
        outcome = refresh(settings, instance, trigger="test")
        assert outcome.success
        return Materializations(outcome.runs)

    yield settings, store, run_refresh
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


class Materializations:
    """The materialization metadata of a refresh's runs, by asset key."""

    def __init__(self, runs):
        self.runs = runs
        self.by_key = {}
        for run in runs:
            for event in run.get_asset_materialization_events():
                self.by_key[event.asset_key.to_user_string()] = event.materialization.metadata

    def metadata(self, key: str) -> dict:
        return self.by_key[key]


def test_first_batch_matches_the_reference(lakehouse):
    settings, store, refresh = lakehouse
    land_sample(settings.home / "landing", seed=11, days=3, orders_per_day=30)
    result = refresh()
    assert_matches(store, expected_state(settings.home / "landing"))
    silver = result.metadata("silver/orders")
    assert silver["dagster/row_count"].value == store.info(t.ORDERS).row_count
    assert silver["rows_inserted"].value == store.info(t.ORDERS).row_count  # first merge only inserts
    assert silver["snapshot_id"].value == str(store.info(t.ORDERS).snapshot_id)


def test_second_batch_with_late_files_matches_the_reference(lakehouse):
    settings, store, refresh = lakehouse
    before = store.info(t.ORDERS).snapshot_id
    new = land_sample(settings.home / "landing", seed=11, days=5, orders_per_day=30)
    assert any("late" in p.name for p in new)
    result = refresh()
    assert_matches(store, expected_state(settings.home / "landing"))
    assert store.info(t.ORDERS).snapshot_id != before
    counts = result.metadata("silver/orders")
    assert counts["rows_updated"].value > 0 and counts["rows_deleted"].value > 0


def test_rerun_without_new_data_changes_nothing(lakehouse):
    settings, store, refresh = lakehouse
    silver = {c.name: store.info(c).snapshot_id for c in (t.ORDERS, t.CUSTOMERS, t.ORDERS_REJECTS, t.CUSTOMERS_REJECTS)}
    bronze_files = store.info(t.ORDERS_RAW).files
    result = refresh()
    assert {c.name: store.info(c).snapshot_id for c in (t.ORDERS, t.CUSTOMERS, t.ORDERS_REJECTS, t.CUSTOMERS_REJECTS)} == silver
    assert store.info(t.ORDERS_RAW).files == bronze_files
    assert "bronze/orders_raw" not in result.by_key  # nothing landed: no ingest of any day
    assert result.metadata("silver/orders")["committed"].value is False
    assert {r.dagster_run.job_name for r in result.runs} == {"ingest"}  # no Gold day changed
    assert_matches(store, expected_state(settings.home / "landing"))


def test_one_changed_order_rebuilds_only_its_gold_day(lakehouse):
    settings, store, refresh_ = lakehouse
    order = max(store.read(t.ORDERS).to_pylist(), key=lambda r: r["lsn"])
    day = order["created_at"].date()
    gold = store.load_table(t.DAILY_SALES)
    files_before = {f.file.file_path for f in gold.scan().plan_files()}
    late = settings.home / "landing" / "orders" / "dt=2026-01-06" / "one-update.jsonl"
    late.parent.mkdir(parents=True, exist_ok=True)
    event = {
        "lsn": order["lsn"] + 1, "op": "u", "order_id": order["order_id"], "customer_id": order["customer_id"],
        "status": "cancelled", "amount": str(order["amount"]), "currency": order["currency"],
        "created_at": order["created_at"].isoformat(), "updated_at": "2026-01-06T09:00:00+00:00",
    }
    late.write_text(json.dumps(event) + "\n")
    result = refresh_()
    assert [r.dagster_run.tags.get("dagster/asset_partition_range_start") for r in result.runs if r.dagster_run.job_name == "publish"] == [day.isoformat()]
    files_after = {f.file.file_path for f in store.load_table(t.DAILY_SALES).scan().plan_files()}
    untouched = {f for f in files_before if f"report_date={day.isoformat()}" not in f}
    assert untouched and untouched <= files_after  # every other day keeps its data files
    assert_matches(store, expected_state(settings.home / "landing"))


def test_silver_crash_between_write_and_commit_loses_and_duplicates_nothing(lakehouse, monkeypatch):
    from pyiceberg.table import Transaction

    settings, store, refresh_ = lakehouse
    land_sample(settings.home / "landing", seed=11, days=6, orders_per_day=30)
    before = store.info(t.ORDERS).snapshot_id
    applied_before = store.info(t.ORDERS).properties.get("lakehouse.applied.bronze.orders_raw")
    original = Transaction.commit_transaction

    def crash_silver_orders(self):
        if self._table.name() == ("silver", "orders"):
            raise RuntimeError("killed before the commit")
        return original(self)

    monkeypatch.setattr(Transaction, "commit_transaction", crash_silver_orders)
    outcome = refresh(settings, dg.DagsterInstance.ephemeral(), trigger="test")
    assert not outcome.success
    monkeypatch.undo()
    # Bronze took the new files; Silver neither moved nor advanced its watermark.
    assert store.info(t.ORDERS).snapshot_id == before
    assert store.info(t.ORDERS).properties.get("lakehouse.applied.bronze.orders_raw") == applied_before
    refresh_()
    assert_matches(store, expected_state(settings.home / "landing"))


def test_landing_day_before_the_partitions_is_refused_naming_day_and_setting(tmp_path):
    from lakehouse.automation.partitions import PartitionRangeError

    settings = Settings(home=tmp_path / "lh", partitions_start="2026-01-02")
    land_sample(settings.home / "landing", seed=1, days=1, orders_per_day=5, start=dt.date(2026, 1, 1))
    with pytest.raises(PartitionRangeError, match="landing day 2026-01-01 is before LAKEHOUSE_PARTITIONS_START=2026-01-02"):
        refresh(settings, dg.DagsterInstance.ephemeral())
