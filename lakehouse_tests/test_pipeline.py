"""End to end in process: every asset materialized over sample data equals an independent reference."""

from __future__ import annotations

import dagster as dg
import pytest

from lakehouse.assets import all_assets
from lakehouse.contracts import tables as t
from lakehouse.environment import resources_for
from lakehouse.settings import Settings
from lakehouse.sources.sample import land_sample
from lakehouse_tests.compare import assert_matches
from lakehouse_tests.reference import expected_state


@pytest.fixture(scope="module")
def lakehouse(tmp_path_factory, spark):
    settings = Settings(home=tmp_path_factory.mktemp("pipeline") / "lakehouse")
    resources = resources_for(settings)
    store = resources["store"].get_store()
    instance = dg.DagsterInstance.ephemeral()

    def refresh() -> dg.ExecuteInProcessResult:
        result = dg.materialize(all_assets(), resources=resources, instance=instance)
        assert result.success
        return result

    return settings, store, refresh


def test_first_batch_matches_the_reference(lakehouse):
    settings, store, refresh = lakehouse
    land_sample(settings.home / "landing", seed=11, days=3, orders_per_day=30)
    result = refresh()
    assert_matches(store, expected_state(settings.home / "landing"))
    silver = result.asset_materializations_for_node("silver__orders")[0].metadata
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
    counts = result.asset_materializations_for_node("silver__orders")[0].metadata
    assert counts["rows_updated"].value > 0 and counts["rows_deleted"].value > 0


def test_rerun_without_new_data_changes_nothing(lakehouse):
    settings, store, refresh = lakehouse
    silver = {c.name: store.info(c).snapshot_id for c in (t.ORDERS, t.CUSTOMERS, t.ORDERS_REJECTS, t.CUSTOMERS_REJECTS)}
    bronze_files = store.info(t.ORDERS_RAW).files
    result = refresh()
    assert {c.name: store.info(c).snapshot_id for c in (t.ORDERS, t.CUSTOMERS, t.ORDERS_REJECTS, t.CUSTOMERS_REJECTS)} == silver
    assert store.info(t.ORDERS_RAW).files == bronze_files
    assert result.asset_materializations_for_node("bronze__orders_raw")[0].metadata["new_files"].value == 0
    assert_matches(store, expected_state(settings.home / "landing"))
