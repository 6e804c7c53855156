"""`lakehouse repair` on a home in the layout of an older version, damaged by two refreshes at once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse.automation.refresh import refresh
from lakehouse.contracts.tables import ALL_TABLES, CUSTOMERS_RAW, ORDERS, ORDERS_RAW
from lakehouse.environment import resources_for
from lakehouse.io.bronze_files import LegacyBronzeError
from lakehouse.io.repair import repair
from lakehouse.sources.sample import land_sample
from lakehouse_tests.compare import assert_matches
from lakehouse_tests.reference import expected_state


def _to_legacy_layout(store, contract, duplicate: bool) -> int:
    """Rewrite a Bronze table as an older version left it: one part-file per day holding every
    landing file of the day, the same part-file twice if ``duplicate`` (two refreshes at once),
    no registry."""
    root = Path(store.uri(contract).removeprefix("file://"))
    days = 0
    for folder in sorted(root.glob("dt=*")):
        parts = [pq.read_table(p) for p in sorted(folder.glob("*.parquet"))]
        merged = pa.concat_tables(parts)
        sources = sorted(set(merged["_source_file"].to_pylist()))
        merged = merged.replace_schema_metadata({b"lakehouse.source_files": json.dumps(sources).encode()})
        for p in folder.glob("*.parquet"):
            p.unlink()
        pq.write_table(merged, folder / "part-0123abcd-000000000001.parquet")
        if duplicate:
            shutil.copy(folder / "part-0123abcd-000000000001.parquet", folder / "part-4567cdef-000000000002.parquet")
        days += 1
    store.catalog.drop_table(store.bronze(contract).identifier)
    return days


@pytest.mark.slow
def test_repair_converts_a_damaged_old_home_and_the_next_refresh_equals_the_reference(settings, spark):
    landing = Path(settings.landing_root)
    land_sample(landing, days=2, orders_per_day=40)
    instance = dg.DagsterInstance.ephemeral()
    assert refresh(settings, instance).success
    store = resources_for(settings)["store"].get_store()
    days = _to_legacy_layout(store, ORDERS_RAW, duplicate=True)
    _to_legacy_layout(store, CUSTOMERS_RAW, duplicate=False)
    table = store.load_table(ORDERS)
    with table.transaction() as tx:  # the old watermark: every Bronze file applied, by name
        tx.set_properties({"lakehouse.applied.bronze.orders_raw": json.dumps(["dt=2026-01-01/part-0123abcd-000000000001.parquet"])})

    with pytest.raises(LegacyBronzeError, match="run `lakehouse repair` once"):
        refresh(settings, instance)  # refused before any run, naming the command to run

    said: list[str] = []
    report = repair(store, ALL_TABLES, said.append, dry_run=True)
    assert report.legacy_files == days * 2 + days and not list(Path(store.uri(ORDERS_RAW).removeprefix("file://")).rglob("*.jsonl.parquet"))
    report = repair(store, ALL_TABLES, said.append)
    assert report.duplicate_copies_dropped > 0 and "silver.orders" in report.purged
    landed = {p.relative_to(landing / "orders").as_posix() + ".parquet" for p in (landing / "orders").glob("dt=*/*")}
    assert set(store.bronze_files(ORDERS_RAW)) == landed
    assert store.bronze(ORDERS_RAW).registered().num_rows == len(landed)
    assert repair(store, ALL_TABLES, said.append).purged == []  # a second repair changes nothing

    assert refresh(settings, instance).success
    assert_matches(store, expected_state(landing))
