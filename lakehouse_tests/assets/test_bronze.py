"""Bronze ingestion per landing day: each file once, late files alone, ranges of days in one run."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from lakehouse.assets import all_assets
from lakehouse.automation.planning import range_tags
from lakehouse.contracts.tables import CUSTOMERS_RAW, ORDERS_RAW
from lakehouse.environment import resources_for


def land(settings, day: str, name: str, lines: list[str]) -> None:
    folder = settings.home / "landing" / "orders" / f"dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(line + "\n" for line in lines))


@pytest.fixture
def bronze(settings):
    resources = resources_for(settings)
    orders_raw = next(a for a in all_assets() if ORDERS_RAW.asset_key in a.keys)
    return resources["store"].get_store(), lambda **kw: dg.materialize([orders_raw], resources=resources, **kw)


def test_rerunning_a_day_appends_nothing_and_a_late_file_alone(settings, bronze):
    store, materialize = bronze
    land(settings, "2026-01-01", "a.jsonl", ['{"n": 1}', "", '{"n": 2}'])
    assert materialize(partition_key="2026-01-01").success
    assert store.read(ORDERS_RAW).num_rows == 2
    files = store.bronze_files(ORDERS_RAW)
    assert materialize(partition_key="2026-01-01").success
    assert store.bronze_files(ORDERS_RAW) == files and store.read(ORDERS_RAW).num_rows == 2
    land(settings, "2026-01-01", "late.jsonl", ['{"n": 3}'])
    result = materialize(partition_key="2026-01-01")
    assert result.asset_materializations_for_node("bronze__orders_raw")[0].metadata["new_files"].value == 1
    rows = store.read(ORDERS_RAW).to_pylist()
    assert sorted((r["_source_file"], r["_line_number"]) for r in rows) == [
        ("orders/dt=2026-01-01/a.jsonl", 1),
        ("orders/dt=2026-01-01/a.jsonl", 3),
        ("orders/dt=2026-01-01/late.jsonl", 1),
    ]
    assert {r["_batch_id"] for r in rows if r["_source_file"].endswith("late.jsonl")} == {result.run_id}


def test_a_range_of_days_is_ingested_in_one_run(settings, bronze):
    store, materialize = bronze
    for day in ("2026-01-01", "2026-01-02", "2026-01-03", "2026-01-09"):
        land(settings, day, "x.jsonl", ['{"n": 1}'])
    first, last = dt.date(2026, 1, 1), dt.date(2026, 1, 3)
    result = materialize(tags=range_tags(first, last))
    assert result.success
    rows = store.read(ORDERS_RAW).to_pylist()
    assert sorted({str(r["dt"]) for r in rows}) == ["2026-01-01", "2026-01-02", "2026-01-03"]  # not the 9th
    assert {r["_batch_id"] for r in rows} == {result.run_id}


def test_a_bad_customer_header_rejects_every_row_of_the_file(settings):
    resources = resources_for(settings)
    folder = settings.home / "landing" / "customers" / "dt=2026-01-01"
    folder.mkdir(parents=True)
    (folder / "c.csv").write_text("id,name\nc-1,Ann,a@b.cd,DE,2026-01-01T00:00:00Z\n")
    customers_raw = next(a for a in all_assets() if CUSTOMERS_RAW.asset_key in a.keys)
    assert dg.materialize([customers_raw], resources=resources, partition_key="2026-01-01").success
    (row,) = resources["store"].get_store().read(CUSTOMERS_RAW).to_pylist()
    assert row["_parse_error"] == "malformed_csv" and row["_line_number"] == 2 and row["customer_id"] is None


def test_the_dagster_cli_backfills_a_range_of_days_in_one_run(settings, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    for day in ("2026-01-01", "2026-01-02", "2026-01-03"):
        land(settings, day, "x.jsonl", ['{"n": 1}', '{"n": 2}'])
    dagster = Path(sys.executable).parent / "dagster"
    out = subprocess.run(
        [str(dagster), "asset", "materialize", "-m", "lakehouse.definitions", "--select", "bronze/orders_raw",
         "--partition-range", "2026-01-01...2026-01-03"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "LAKEHOUSE_HOME": str(settings.home)},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    rows = resources_for(settings)["store"].get_store().read(ORDERS_RAW).to_pylist()
    assert len(rows) == 6 and len({r["_batch_id"] for r in rows}) == 1  # three days, one run
