"""Incremental refresh benchmark: a full initial refresh versus a refresh after 1% new events.

For each size N (default 1,000,000 orders, then 5x that), in a fresh temp home:
  (a) land N orders over --days days of sample data and time `lakehouse refresh` (everything new);
  (b) land 1% more events on a new day and time `lakehouse refresh` again.
Goal: (b) costs at most 15% of (a), and (b) stays flat when N grows 5x.
At 5N, also (b') a refresh after the first size's increment (1% of N, not of 5N): the same new
data on a table 5x larger, which is what "flat" compares. Then the fixed costs every refresh
pays, whatever the data: (c) `lakehouse refresh` with nothing new (no Spark starts), and (d)
starting the local Spark session and running a one-row job.

Each refresh runs as a subprocess (`python -m lakehouse.cli refresh`, the real command); its peak
memory is the largest sum of RSS over its process tree (Python and the Spark JVM), sampled every
0.1 s with psutil.

    python benchmarks/incremental.py                 # N = 1,000,000 and 5,000,000
    python benchmarks/incremental.py --rows 200000 --scale 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from lakehouse.settings import Settings
from lakehouse.sources.sample import land_sample

START = dt.date(2026, 1, 1)


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def timed_refresh(env: dict) -> tuple[float, int]:
    """Wall seconds and peak process-tree RSS of one `lakehouse refresh`."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "lakehouse.cli", "refresh"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak = 0
    watched = psutil.Process(proc.pid)
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            try:
                peak = max(peak, tree_rss(watched))
            except psutil.Error:
                pass
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = proc.communicate()
    done.set()
    sampler.join()
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"refresh failed ({proc.returncode}):\n{output.decode()[-4000:]}")
    return elapsed, peak


def run_size(rows: int, days: int, workdir: Path, base_increment: int | None = None) -> dict:
    """(a), (b), (c), (d) for N = ``rows``; with ``base_increment``, also (b') a refresh after that
    many new events (1% of the first N) on this larger table."""
    home = workdir / f"n{rows}"
    env = {**os.environ, "LAKEHOUSE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    landing = Settings(home=home).home / "landing"
    t0 = time.perf_counter()
    land_sample(landing, seed=1, days=days, orders_per_day=rows // days, start=START)
    generated = time.perf_counter() - t0
    full, full_rss = timed_refresh(env)
    # 1% new events on the next day (a separate seed: its own orders, updates and deletes).
    land_sample(landing, seed=2, days=1, orders_per_day=max(5, rows // 100), start=START + dt.timedelta(days=days))
    incremental, inc_rss = timed_refresh(env)
    same = None
    if base_increment is not None:
        # The first size's increment again, on the following day: same new data, a table 5x larger.
        land_sample(landing, seed=3, days=1, orders_per_day=max(5, base_increment), start=START + dt.timedelta(days=days + 1))
        same, _ = timed_refresh(env)
    # The fixed costs any refresh pays whatever the data: (c) a refresh with nothing new (Python,
    # Dagster, planning, one no-op run; no Spark), (d) starting Spark and running a first job.
    noop, _ = timed_refresh(env)
    spark_start = spark_startup(env)
    from lakehouse.contracts.tables import ORDERS
    from lakehouse.environment import resources_for

    silver_rows = resources_for(Settings(home=home))["store"].get_store().info(ORDERS).row_count
    return dict(
        rows=rows, silver_rows=silver_rows, generate_s=generated, full_s=full, full_rss=full_rss, inc_s=incremental, inc_rss=inc_rss,
        same_s=same, noop_s=noop, spark_s=spark_start,
    )


SPARK_START = """
import time
from lakehouse.resources.spark import LOCAL_SPARK_CONFIG, LocalSparkResource
started = time.perf_counter()
LocalSparkResource(spark_config=LOCAL_SPARK_CONFIG).spark_session.range(1).count()
print(time.perf_counter() - started)
"""


def spark_startup(env: dict) -> float:
    """Seconds to start the local Spark session the lakehouse uses and run a one-row job, in a
    fresh process (imports excluded: the no-op refresh counts those)."""
    out = subprocess.run([sys.executable, "-c", SPARK_START], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="orders in the first size (N)")
    parser.add_argument("--scale", type=int, default=5, help="second size = N * scale (0: only N)")
    parser.add_argument("--days", type=int, default=10, help="landing days the N orders are spread over")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the lakehouses here (default: a temp dir)")
    args = parser.parse_args()
    sizes = [args.rows] + ([args.rows * args.scale] if args.scale else [])
    with tempfile.TemporaryDirectory(prefix="lakehouse-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        results = []
        for rows in sizes:
            r = run_size(rows, args.days, workdir, base_increment=args.rows // 100 if results else None)
            results.append(r)
            print(
                f"N={r['rows']:>9,} (silver rows {r['silver_rows']:,}; data generated in {r['generate_s']:.1f} s)\n"
                f"  (a) full refresh       {r['full_s']:7.1f} s   peak RSS {r['full_rss'] / 2**20:7.0f} MiB\n"
                f"  (b) refresh after 1%   {r['inc_s']:7.1f} s   peak RSS {r['inc_rss'] / 2**20:7.0f} MiB   ({max(5, rows // 100):,} orders)\n"
                f"  (b)/(a) = {r['inc_s'] / r['full_s']:.1%}  (goal <= 15%)",
                flush=True,
            )
            if r["same_s"] is not None:
                print(f"  (b') refresh after {args.rows // 100:,} orders (1% of the first N) {r['same_s']:7.1f} s", flush=True)
            print(
                f"  fixed costs: (c) refresh with nothing new {r['noop_s']:.1f} s, (d) Spark start + first job {r['spark_s']:.1f} s;"
                f" (c)+(d) = {(r['noop_s'] + r['spark_s']) / r['full_s']:.1%} of (a)",
                flush=True,
            )
        if len(results) == 2:
            growth = results[1]["same_s"] / results[0]["inc_s"]
            print(f"same increment, table {args.scale}x larger: (b') / (b) at N = {growth:.2f}x  (goal: flat, ~1x)")
            print(f"1% of each N: (b) at {args.scale}x N / (b) at N = {results[1]['inc_s'] / results[0]['inc_s']:.2f}x (the increment grows {args.scale}x too)")


if __name__ == "__main__":
    main()
