"""The PostgreSQL source's memory stays flat as the table grows: extracts of N payments rows into
Bronze, each in a process of its own, with the peak RSS of that process (``VmHWM``).

Starts a PostgreSQL server on 127.0.0.1 (initdb/pg_ctl in a temp folder, as the tests do), fills
``public.payments`` with N rows (generate_series, in the server), and runs one full extract per
size with ``--batch-rows`` rows per page (the Arrow store, a temp home).

    python benchmarks/postgres_extract.py                         # 200,000 and 1,000,000 rows, pages of 100,000
    python benchmarks/postgres_extract.py --sizes 100000 --batch-rows 20000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(home: str, batch_rows: int) -> None:
    """One extract in this process; prints rows, batches, seconds and peak RSS as JSON."""
    import logging

    from lakehouse.assets import PAYMENTS_SOURCE
    from lakehouse.assets.bronze_database import extract
    from lakehouse.contracts.tables import PAYMENTS, PAYMENTS_RAW
    from lakehouse.io.table_store import CommitStamp
    from lakehouse.sources.postgres import PostgresSourceResource
    from lakehouse_tests.conftest import make_store

    env = os.environ
    source = PostgresSourceResource(host="127.0.0.1", port=int(env["BENCH_PG_PORT"]), database=env["BENCH_PG_DATABASE"], user=env["BENCH_PG_USER"],
                                    password=env["BENCH_PG_PASSWORD"], sslmode="require", batch_rows=batch_rows, key_snapshot_hours=None)
    store = make_store(Path(home))
    t0 = time.perf_counter()
    with source.connect() as reader:
        report = extract(PAYMENTS_SOURCE, PAYMENTS_RAW, PAYMENTS, reader, store, source, CommitStamp("bench", "bronze/payments_raw"),
                         logging.getLogger("bench"))
    seconds = time.perf_counter() - t0
    peak = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM"))
    print(json.dumps({"rows": report.rows_appended, "batches": len(report.batches), "seconds": seconds, "peak_mib": peak / 1024}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="200000,1000000")
    parser.add_argument("--batch-rows", type=int, default=100_000)
    args = parser.parse_args()
    from lakehouse_tests import postgres_server

    server_fixture = postgres_server.postgres.__wrapped__()
    server = next(server_fixture)
    try:
        print(f"postgres extract benchmark: pages of {args.batch_rows:,} rows; {os.cpu_count()} cores")
        print(f"  {'rows':>10}  {'batches':>7}  {'seconds':>8}  {'rows/s':>9}  {'peak RSS MiB':>12}")
        for n, size in enumerate(int(s) for s in args.sizes.split(",")):
            database = f"bench{n}"
            server.create_database(database)
            connection = server.connect(database)
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("CREATE TABLE public.payments (payment_id text PRIMARY KEY, order_id text, amount numeric(18,2), currency text, "
                               "status text, updated_at timestamptz NOT NULL)")
                cursor.execute("INSERT INTO payments SELECT 'p' || g, 'o' || (g / 3), (g %% 9000) / 100.0, 'EUR', "
                               "(ARRAY['pending','captured','refunded','failed'])[1 + g %% 4], "
                               "timestamptz '2026-01-01' + g * interval '1 second' FROM generate_series(1, %s) g", (size,))
            connection.close()
            with tempfile.TemporaryDirectory() as home:
                env = dict(os.environ, BENCH_PG_PORT=str(server.port), BENCH_PG_DATABASE=database, BENCH_PG_USER=server.username,
                           BENCH_PG_PASSWORD=server.password, PYTHONPATH=str(ROOT))
                done = subprocess.run([sys.executable, __file__, "--child", home, str(args.batch_rows)], env=env, capture_output=True,
                                      text=True, timeout=1800)
                if done.returncode != 0:
                    print(done.stderr[-2000:])
                    return 1
                r = json.loads(done.stdout.strip().splitlines()[-1])
                assert r["rows"] == size, f"extracted {r['rows']} of {size} rows"
                print(f"  {r['rows']:>10,}  {r['batches']:>7}  {r['seconds']:>8.1f}  {r['rows'] / r['seconds']:>9,.0f}  {r['peak_mib']:>12,.0f}")
    finally:
        next(server_fixture, None)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(main())
