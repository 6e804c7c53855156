"""Query time of silver/orders after many small merges, before and after table maintenance.

    python benchmarks/maintenance.py                    # 200 merges of 500 events on 50,000 rows
    python benchmarks/maintenance.py --merges 50 --events 200

Builds silver.orders in a temporary home (pyiceberg SQL catalog, ArrowTableStore), applies
``--merges`` CDC batches (60% updates of recent keys, 40% new keys), then times a full scan of the
table with DuckDB (over the data files of the current snapshot, as dbt-duckdb and the peer read it)
and with pyiceberg (``Table.scan().to_arrow()``, which also reads the manifests), each the median of
``--repeat`` runs; runs maintenance (default policy, except snapshots kept by count: 5, and the
small-file threshold at 1 MiB); and times the same scans again. Prints files, manifests, snapshots
and both timings, and checks the rows are the same.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
from bookkeeping import timed  # run as `python benchmarks/maintenance.py`: the folder is on sys.path
from pyiceberg.catalog.sql import SqlCatalog

from lakehouse.contracts.maintenance import MaintenancePolicy
from lakehouse.contracts.model import Layer
from lakehouse.contracts.tables import ORDERS
from lakehouse.io.arrow_store import ArrowTableStore
from lakehouse.io.table_store import CommitStamp

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SCHEMA = pa.schema([*(f.with_nullable(True) for f in ORDERS.arrow_schema), pa.field("_is_delete", pa.bool_())])


def _event(key: int, lsn: int) -> dict:
    return dict(order_id=f"o-{key:09d}", customer_id=f"c-{key % 997}", status=random.choice(["placed", "paid", "shipped"]),
                amount=Decimal("12.50"), currency="EUR", created_at=T0 + dt.timedelta(minutes=key % 14400),
                updated_at=T0 + dt.timedelta(seconds=lsn), lsn=lsn, _source_file="bench", _ingested_at=T0, _batch_id="b",
                _is_delete=False)


def _store(home: Path) -> ArrowTableStore:
    catalog = SqlCatalog("lakehouse", uri=f"sqlite:///{home}/catalog.db", warehouse=(home / "warehouse").as_uri())
    warehouse = (home / "warehouse").as_uri()
    return ArrowTableStore(catalog, {layer: f"{warehouse}/{layer.value}" for layer in Layer}, {layer: layer.value for layer in Layer})


def _scans(store: ArrowTableStore, repeat: int) -> tuple[float, float, int]:
    table = store.load_table(ORDERS)

    def with_duckdb():
        files = store.data_files(ORDERS)
        return duckdb.sql(f"select count(*), sum(amount) from read_parquet({[f.replace('file://', '') for f in files]!r})").fetchall()[0]

    duck, (rows, _) = timed(with_duckdb, repeat)
    iceberg, _ = timed(lambda: table.refresh().scan().to_arrow(), repeat)
    return duck, iceberg, rows


def _shape(store: ArrowTableStore) -> str:
    table = store.load_table(ORDERS)
    files = len(list(table.scan().plan_files()))
    manifests = len(table.current_snapshot().manifests(table.io))
    return f"{files} data files, {manifests} manifests, {len(table.metadata.snapshots)} snapshots"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=50_000, help="rows of the first load")
    p.add_argument("--merges", type=int, default=200)
    p.add_argument("--events", type=int, default=500, help="events per merge")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    random.seed(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        store = _store(Path(tmp))
        stamp = CommitStamp(run_id="bench", asset_key="silver/orders")
        lsn = 1
        store.merge(ORDERS, pa.Table.from_pylist([_event(k, lsn) for k in range(args.rows)], SCHEMA), stamp)
        top = args.rows
        started = time.perf_counter()
        for _ in range(args.merges):
            lsn += 1
            updates = [random.randrange(max(0, top - args.rows // 10), top) for _ in range(int(args.events * 0.6))]
            inserts = list(range(top, top + args.events - len(updates)))
            top += len(inserts)
            store.merge(ORDERS, pa.Table.from_pylist([_event(k, lsn) for k in sorted(set(updates)) + inserts], SCHEMA), stamp)
        print(f"maintenance benchmark: {args.rows:,} rows, then {args.merges} merges of {args.events} events ({time.perf_counter() - started:.1f} s)")
        before_rows = store.read(ORDERS).sort_by("order_id")
        duck, iceberg, rows = _scans(store, args.repeat)
        print(f"  before: {_shape(store)}; {rows:,} rows")
        print(f"    scan with DuckDB {duck * 1000:.0f} ms, with pyiceberg {iceberg * 1000:.0f} ms (median of {args.repeat})")
        policy = MaintenancePolicy(keep_snapshots=5, keep_snapshot_days=0)
        start = time.perf_counter()
        (report, _tombstones) = store.maintain(ORDERS, CommitStamp(run_id="bench-maintenance", asset_key="maintenance/silver"), policy=policy)
        took = time.perf_counter() - start
        print(f"  maintenance: {took:.1f} s: {'; '.join(report.actions)}")
        duck_after, iceberg_after, rows_after = _scans(store, args.repeat)
        print(f"  after: {_shape(store)}; {rows_after:,} rows")
        print(f"    scan with DuckDB {duck_after * 1000:.0f} ms, with pyiceberg {iceberg_after * 1000:.0f} ms (median of {args.repeat})")
        same = store.read(ORDERS).sort_by("order_id").equals(before_rows)
        print(f"  rows unchanged: {same}; scan time after/before: DuckDB {duck_after / duck:.2f}, pyiceberg {iceberg_after / iceberg:.2f}")
        if not same:
            raise SystemExit("maintenance changed the rows")


if __name__ == "__main__":
    main()
