"""End to end in process: every asset materialized over sample data equals an independent reference."""

from __future__ import annotations

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
