"""Bookkeeping whose cost does not grow with history: planning with 100 Bronze files against 10,000.

Builds, for each size, a home whose landing zone and Bronze hold that many order files (spread
over days, registered in commits of ``--files-per-commit``), with Silver's watermark at the
registration before the last, then times what every sensor tick, refresh and Silver step does
before any data is read:

- sensor tick: landing files not yet in Bronze (recent days, as the landing sensor lists them),
  Silver tables behind Bronze, the Gold plan;
- Silver planning: the Bronze files registered after the watermark, and the record count the
  accounting check compares with;
- the size of Silver's table properties (where the watermark lives).

    python benchmarks/bookkeeping.py                  # 100 and 10,000 files
    python benchmarks/bookkeeping.py --sizes 100,1000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lakehouse.automation.planning import new_landing_files, plan_gold, silver_behind
from lakehouse.automation.sensors import SENSOR_LOOKBACK_DAYS
from lakehouse.contracts.tables import ORDERS, ORDERS_RAW
from lakehouse.environment import resources_for
from lakehouse.io.bronze_files import BATCH_SOURCES_KEY
from lakehouse.io.table_store import CommitStamp
from lakehouse.io.watermarks import applied_property, applied_value
from lakehouse.settings import Settings

START = dt.date(2026, 1, 1)


def build(home: Path, files: int, per_day: int, per_commit: int):
    settings = Settings(home=home)
    resources = resources_for(settings)
    store = resources["store"].get_store()
    landing = Path(settings.landing_root)
    names = []
    for i in range(files):
        day = START + dt.timedelta(days=i // per_day)
        path = f"orders/dt={day.isoformat()}/o-{i:06d}.jsonl"
        (landing / path).parent.mkdir(parents=True, exist_ok=True)
        (landing / path).write_text('{"lsn": 1}\n')
        names.append((path, day))
    stamp = CommitStamp(run_id="bench", asset_key="bronze/orders_raw")
    now = dt.datetime.now(dt.UTC)
    seqs = []
    for start in range(0, files, per_commit):
        chunk = names[start : start + per_commit]
        rows = pa.table(
            {
                "_raw": ['{"lsn": 1}'] * len(chunk),
                "_line_number": [1] * len(chunk),
                "_source_file": [p for p, _ in chunk],
                "_ingested_at": [now] * len(chunk),
                "_batch_id": ["bench"] * len(chunk),
                "dt": [d for _, d in chunk],
            },
            schema=ORDERS_RAW.arrow_schema,
        ).replace_schema_metadata({BATCH_SOURCES_KEY: json.dumps([p for p, _ in chunk]).encode()})
        store.append(ORDERS_RAW, rows, stamp)
        seqs.append(store.bronze_seq(ORDERS_RAW))
    # Silver has applied everything but the last commit: one commit's files are pending.
    table = store.ensure_table(ORDERS)
    with table.transaction() as tx:
        tx.set_properties({applied_property(ORDERS_RAW.qualified_name): applied_value(seqs[-2] if len(seqs) > 1 else 0)})
    newest = START + dt.timedelta(days=(files - 1) // per_day)
    return settings, resources, store, newest


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def measure(files: int, per_day: int, per_commit: int, repeat: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        settings, resources, store, newest = build(Path(tmp) / "home", files, per_day, per_commit)
        built = time.perf_counter() - t0
        zone = resources["landing"].zone()
        since = newest - dt.timedelta(days=SENSOR_LOOKBACK_DAYS)
        tick, new = timed(lambda: (new_landing_files(zone, store, since=since), silver_behind(store), plan_gold(store)), repeat)
        applied = json.loads(store.info(ORDERS).properties[applied_property(ORDERS_RAW.qualified_name)])["seq"]
        plan, pending = timed(lambda: store.pending_bronze(ORDERS_RAW, applied), repeat)
        count, records = timed(lambda: store.bronze_records_through(ORDERS_RAW, pending.seq), repeat)
        props = store.info(ORDERS).properties
        return {
            "files": files,
            "build_s": built,
            "tick_s": tick,
            "new_landing": len(new[0]),
            "plan_s": plan,
            "pending_files": len(pending.files),
            "count_s": count,
            "records": records,
            "properties_bytes": len(json.dumps(props)),
            "watermark_bytes": len(props[applied_property(ORDERS_RAW.qualified_name)]),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,10000", help="Bronze file counts to compare")
    parser.add_argument("--files-per-day", type=int, default=100)
    parser.add_argument("--files-per-commit", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = [measure(int(n), args.files_per_day, args.files_per_commit, args.repeat) for n in args.sizes.split(",")]
    print(f"bookkeeping benchmark: {args.files_per_day} files per landing day, {args.files_per_commit} per registration commit, median of {args.repeat}")
    print(f"  {'bronze files':>12} {'sensor tick s':>14} {'silver plan s':>14} {'accounting s':>13} {'pending':>8} {'props bytes':>12} {'watermark':>10} {'(build s)':>10}")
    for r in rows:
        print(
            f"  {r['files']:>12,} {r['tick_s']:>14.3f} {r['plan_s']:>14.3f} {r['count_s']:>13.3f} {r['pending_files']:>8} "
            f"{r['properties_bytes']:>12,} {r['watermark_bytes']:>10} {r['build_s']:>10.1f}"
        )
    small, large = rows[0], rows[-1]
    print(
        f"  {large['files']:,} vs {small['files']:,} files: sensor tick {large['tick_s'] / small['tick_s']:.2f}x, "
        f"silver plan {large['plan_s'] / small['plan_s']:.2f}x, accounting {large['count_s'] / small['count_s']:.2f}x, "
        f"properties {large['properties_bytes'] / small['properties_bytes']:.2f}x"
    )


if __name__ == "__main__":
    main()
