"""The maintenance assets and their daily schedule: what a maintenance run shows in Dagster."""

from __future__ import annotations

import dagster as dg

from lakehouse.assets.maintenance import maintenance_assets, maintenance_key
from lakehouse.automation.schedules import MAINTENANCE_CRON
from lakehouse.contracts.model import Layer
from lakehouse.contracts.tables import ORDERS
from lakehouse.definitions import build_definitions
from lakehouse.environment import resources_for
from lakehouse.io.table_store import CommitStamp
from lakehouse.settings import Settings
from lakehouse_tests.io.cdc import batch, event, state


def test_a_maintenance_run_compacts_silver_and_says_what_it_did_per_table(tmp_path):
    settings = Settings(home=tmp_path / "lh")
    resources = resources_for(settings)
    store = resources["store"].get_store()
    for i in range(8):
        store.merge(ORDERS, batch(event(f"o-{i}", i + 1)), CommitStamp(run_id=f"r{i}", asset_key="silver/orders"))
    rows = state(store.read(ORDERS))
    silver = next(a for a in maintenance_assets() if maintenance_key(Layer.silver) in a.keys)
    result = dg.materialize([silver], resources=resources)
    assert result.success
    metadata = result.asset_materializations_for_node(silver.node_def.name)[0].metadata
    assert metadata["files_compacted"].value == 8 and metadata["data_files_before"].value == 8 and metadata["data_files_after"].value == 1
    assert metadata["changed"].value is True
    tables = metadata["tables"].value
    assert "| silver.orders | 8 → 1 |" in tables and "compacted 8 small files into 1" in tables
    assert "| silver.customers | | | | | | skipped: the table does not exist yet |" in tables
    assert state(store.read(ORDERS)) == rows
    # The compaction commit is the maintenance run's, and it keeps the data's code version.
    summary = store.load_table(ORDERS).current_snapshot().summary
    assert summary["dagster.run-id"] == result.run_id and summary["lakehouse.maintenance"] == "true"
    again = dg.materialize([silver], resources=resources)
    assert again.asset_materializations_for_node(silver.node_def.name)[0].metadata["changed"].value is False


def test_maintenance_runs_daily_at_three_utc_on_the_silver_and_gold_tables(tmp_path):
    defs = build_definitions(Settings(home=tmp_path / "lh"))
    schedule = defs.resolve_schedule_def("maintenance_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone, schedule.job_name) == (MAINTENANCE_CRON, "UTC", "maintenance") == ("0 3 * * *", "UTC", "maintenance")
    graph = defs.resolve_asset_graph()
    job = defs.resolve_job_def("maintenance")
    assert set(job.asset_layer.selected_asset_keys) == {maintenance_key(Layer.silver), maintenance_key(Layer.gold)}
    assert graph.get(maintenance_key(Layer.silver)).parent_keys == {
        dg.AssetKey(["silver", n]) for n in ("orders", "orders_rejects", "customers", "customers_rejects")
    }
    assert dg.AssetKey(["gold", "customer_cohorts"]) in graph.get(maintenance_key(Layer.gold)).parent_keys
