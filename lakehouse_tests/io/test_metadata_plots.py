"""The numeric metadata Dagster plots over materializations: the same keys, of numeric types, on
every materialization of a table, a write that wrote nothing included (zeros, marked as such)."""

from __future__ import annotations

import dagster as dg

from lakehouse.assets import all_assets
from lakehouse.contracts.tables import ORDERS, ORDERS_RAW
from lakehouse.environment import resources_for
from lakehouse.io.table_write import NO_NEW_DATA
from lakehouse.settings import Settings
from lakehouse.sources.sample import land_sample

# What people want as plots of a Bronze-fed Silver table.
PLOTTED = (
    "dagster/row_count", "rows_written", "rows_inserted", "rows_updated", "rows_deleted", "rows_ignored",
    "records_read", "records_rejected", "records_applied", "records_superseded", "new_bronze_files",
)


def _numeric(metadata: dict) -> dict[str, type]:
    return {k: type(v) for k, v in metadata.items() if isinstance(v, (dg.IntMetadataValue, dg.FloatMetadataValue))}


def _orders(result: dg.ExecuteInProcessResult) -> dict:
    return next(e for e in result.get_asset_materialization_events() if e.asset_key == ORDERS.asset_key).materialization.metadata


def test_a_no_op_materialization_carries_the_same_numeric_keys_as_one_with_changes(tmp_path, spark):
    settings = Settings(home=tmp_path / "lh")
    land_sample(settings.home / "landing", seed=3, days=1, orders_per_day=20)
    resources = resources_for(settings)
    bronze = [a for a in all_assets() if ORDERS_RAW.asset_key in a.keys]
    silver = [a for a in all_assets() if ORDERS.asset_key in a.keys]
    assert dg.materialize(bronze, partition_key="2026-01-01", resources=resources).success

    changed = _orders(dg.materialize(silver, resources=resources))
    unchanged = _orders(dg.materialize(silver, resources=resources))

    assert "outcome" not in changed and changed["committed"].value is True
    assert changed["rows_inserted"].value > 0 and changed["records_rejected"].value > 0  # the sample has invalid records
    # The no-op says so, and reports zeros rather than leaving its counts out.
    assert unchanged["outcome"].value == NO_NEW_DATA and unchanged["committed"].value is False
    for key in PLOTTED:
        assert key in changed and key in unchanged, key
        assert isinstance(changed[key], dg.IntMetadataValue) and isinstance(unchanged[key], dg.IntMetadataValue), (key, changed[key], unchanged[key])
    for key in PLOTTED:
        if key != "dagster/row_count":
            assert unchanged[key].value == 0, (key, unchanged[key])
    assert unchanged["dagster/row_count"].value == changed["dagster/row_count"].value
    numeric = _numeric(changed)
    missing = {k for k in numeric if k not in unchanged}
    assert not missing, f"numeric keys of the write with changes missing from the no-op: {sorted(missing)}"
    assert {k: t for k, t in _numeric(unchanged).items() if k in numeric} == numeric
