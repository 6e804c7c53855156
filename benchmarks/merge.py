"""Benchmark: merging a CDC batch into a Silver table, five ways, on the same machine and data.

    python benchmarks/merge.py [--rows 5000000] [--batch 500000] [--timeout 900]
                               [--scenarios recent,uniform] [--recent-fraction 0.1]
                               [--contenders merge,upsert,rewrite,floor,spark] [--repeat 3]

Contenders, each in a fresh subprocess (so peak RSS is its own) on its own copy of the table,
built from the same seeded Parquet data before the clock starts:

1. merge    ArrowTableStore.merge: prunes files by key bounds, rewrites only the files that lose
            a row, one overwrite snapshot (plus the tombstones commit).
2. upsert   pyiceberg Table.upsert of the batch's inserts/updates and a delete of its deletes,
            in one transaction.
3. rewrite  the naive way: read the whole table, plan with the same merge rules in Arrow,
            overwrite the whole table.
4. floor    the lower bound: read the files that hold an updated or deleted key and write them
            back without those rows, and write the new rows, with pyarrow alone and the same two
            workers (no catalog, no planning: which keys leave which file is worked out before
            the clock starts).
5. spark    SparkTableStore.merge: the Spark-native store's MERGE INTO (Iceberg's Spark runtime,
            local[2], the jars in .jars or LAKEHOUSE_SPARK_JARS; skipped, saying so, when they are
            missing) on a private branch published with the watermark, as the store does. The JVM
            start and one warm-up merge (the same batch, on a branch removed afterwards) come
            before the clock and are reported apart; its peak RSS and CPU time are those of the
            Python process and the JVM together. It has no speed goal: on a cluster it scales
            out, locally it pays for Spark's planning and for a job per statement.

Scenarios: "recent" sends updates and deletes to the newest --recent-fraction of keys (CDC on
orders mostly touches recent orders); "uniform" spreads them over all keys, so nearly every file
is affected. Inserts are new, higher keys in both. A contender still running after --timeout
seconds is stopped and reported as slower than the timeout. Contenders that finish within a minute
run --repeat times (each on a fresh copy of the table) and the fastest run counts, which keeps
the comparison meaningful on a machine shared with other work; every run's time is printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONTENDERS = ("merge", "upsert", "rewrite", "floor", "spark")
LABELS = {
    "merge": "(1) file merge",
    "upsert": "(2) pyiceberg upsert",
    "rewrite": "(3) full rewrite",
    "floor": "(4) affected-files floor",
    "spark": "(5) Spark MERGE INTO",
}
SEED = 20260101
# The Iceberg Spark runtime and its companions (jars/pom.xml fetches them into .jars).
SPARK_JARS = Path(os.environ.get("LAKEHOUSE_SPARK_JARS") or Path(__file__).resolve().parents[1] / ".jars")


# ---- data ------------------------------------------------------------------------------------
def _orders(ids, lsn, created_us, rng, deleted=None):
    """ORDERS rows for the given integer ids (plus the delete flag if ``deleted`` is given)."""
    import numpy as np
    import pyarrow as pa

    from lakehouse.contracts.tables import ORDERS

    n = len(ids)
    customers = pa.array([f"c{i:06d}" for i in range(100_000)], pa.large_string())
    statuses = pa.array(["placed", "paid", "shipped", "delivered", "cancelled"], pa.large_string())
    currencies = pa.array(["EUR", "USD", "GBP"], pa.large_string())
    cents = np.zeros((n, 2), dtype=np.int64)
    cents[:, 0] = rng.integers(100, 1_000_000, n)
    days = (created_us // 86_400_000_000).astype(np.int64)
    sources = pa.array([f"orders/dt={dt.date(1970, 1, 1) + dt.timedelta(days=int(d))}/part-0.jsonl" for d in range(int(days.min()), int(days.max()) + 1)], pa.large_string())
    ts = pa.timestamp("us", tz="UTC")
    columns = {
        "order_id": pa.array([f"o{i:09d}" for i in ids], pa.large_string()),
        "customer_id": customers.take(pa.array(rng.integers(0, len(customers), n))),
        "status": statuses.take(pa.array(rng.integers(0, len(statuses), n))),
        "amount": pa.Array.from_buffers(pa.decimal128(18, 2), n, [None, pa.py_buffer(cents.tobytes())]),
        "currency": currencies.take(pa.array(rng.integers(0, len(currencies), n))),
        "created_at": pa.array(created_us, ts),
        "updated_at": pa.array(created_us + rng.integers(0, 3_600_000_000, n), ts),
        "lsn": pa.array(lsn, pa.int64()),
        "_source_file": sources.take(pa.array(days - days.min())),
        "_ingested_at": pa.array(created_us + 3_600_000_000, ts),
        "_batch_id": pa.array(["run-" + "0" * 32] * n, pa.large_string()),
    }
    table = pa.table(columns).cast(pa.schema([f.with_nullable(True) for f in ORDERS.arrow_schema]))
    if deleted is not None:
        table = table.append_column("_is_delete", pa.array(deleted, pa.bool_()))
    return table


def generate(work: Path, rows: int, batch: int, scenario: str, recent_fraction: float) -> dict:
    """Seeded base table and CDC batch as Parquet: 60% updates, 30% inserts, 10% deletes."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    start_us = int(dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp() * 1_000_000)
    span_us = 365 * 86_400_000_000
    base_path = work / "base.parquet"
    if not base_path.exists():
        rng = np.random.default_rng(SEED)
        ids = np.arange(rows)
        created = start_us + ids * (span_us // rows)
        pq.write_table(_orders(ids, ids + 1, created, rng), base_path, compression="zstd")
    updates, inserts = int(batch * 0.6), int(batch * 0.3)
    deletes = batch - updates - inserts
    rng = np.random.default_rng(SEED + (1 if scenario == "recent" else 2))
    if scenario == "recent":
        window = max(int(rows * recent_fraction), updates + deletes)
        touched = rows - window + rng.choice(window, updates + deletes, replace=False)
    else:
        touched = rng.choice(rows, updates + deletes, replace=False)
    new_ids = np.arange(rows, rows + inserts)
    ids = np.concatenate([touched[:updates], new_ids, touched[updates:]])
    created = np.concatenate(
        [start_us + touched[:updates] * (span_us // rows), start_us + span_us + np.arange(inserts) * 1_000_000, np.zeros(deletes, np.int64)]
    )
    lsn = rows + 1 + np.arange(len(ids))
    is_delete = np.concatenate([np.zeros(updates + inserts, bool), np.ones(deletes, bool)])
    cdc = _orders(ids, lsn, created, rng, deleted=is_delete)
    # A delete event carries only its key and sequence.
    for name in ("customer_id", "status", "amount", "currency", "created_at", "updated_at"):
        i = cdc.schema.get_field_index(name)
        cdc = cdc.set_column(i, name, pc.if_else(pa.array(is_delete), pa.nulls(len(cdc), cdc.schema.field(i).type), cdc[name]))
    order = rng.permutation(len(cdc))  # delivery order is not key order
    cdc = cdc.take(pa.array(order))
    batch_path = work / f"batch-{scenario}.parquet"
    pq.write_table(cdc, batch_path, compression="zstd")
    return {"base": str(base_path), "batch": str(batch_path), "updates": updates, "inserts": inserts, "deletes": deletes}


# ---- child processes ---------------------------------------------------------------------------
def _catalog_properties(home: Path) -> dict[str, str]:
    return {"type": "sql", "uri": f"sqlite:///{home}/catalog.db", "warehouse": (home / "warehouse").as_uri()}


def _store(home: Path):
    from pyiceberg.catalog.sql import SqlCatalog

    from lakehouse.contracts.model import Layer
    from lakehouse.io.arrow_store import ArrowTableStore

    home.mkdir(parents=True, exist_ok=True)
    props = _catalog_properties(home)
    warehouse = props["warehouse"]
    catalog = SqlCatalog("lakehouse", uri=props["uri"], warehouse=warehouse)
    return ArrowTableStore(catalog, {layer: f"{warehouse}/{layer.value}" for layer in Layer}, {layer: layer.value for layer in Layer})


def _spark_store(home: Path):
    """The Spark-native store over the same catalog as ``_store``, and the seconds its Spark
    session took to start (the JVM, Spark's context, the Iceberg jars; no job yet). The session
    is the lakehouse's local one (LOCAL_SPARK_CONFIG, as the tests start it) on local[2], with
    the catalog settings ``iceberg_spark_config`` gives for this catalog."""
    from lakehouse.io.spark_store import SparkTableStore
    from lakehouse.resources.iceberg_spark import iceberg_spark_config, jar_paths
    from lakehouse.resources.spark import LOCAL_SPARK_CONFIG, ensure_java, logging_config

    arrow = _store(home)
    props = _catalog_properties(home)
    iceberg = iceberg_spark_config(arrow.catalog.name, props, jar_paths(SPARK_JARS))
    ensure_java()
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in logging_config({**LOCAL_SPARK_CONFIG, "spark.master": "local[2]", "spark.app.name": "merge-bench", **iceberg}).items():
        builder = builder.config(key, value)
    start = time.perf_counter()
    session = builder.getOrCreate()
    jvm_start = time.perf_counter() - start
    prefix = f"spark.sql.catalog.{arrow.catalog.name}."
    spark_catalog = {k[len(prefix):]: v for k, v in iceberg.items() if k.startswith(prefix)}
    store = SparkTableStore(arrow.catalog, arrow.locations, arrow.namespaces, spark_session=lambda: session, spark_catalog=spark_catalog)
    return store, jvm_start


def build(home: Path, base: str) -> None:
    """The Silver table as the merge leaves it: sorted by key, cut at the merge's file size."""
    import pyarrow.parquet as pq

    from lakehouse.contracts.tables import ORDERS
    from lakehouse.io.file_rewrite import DEFAULT_TARGET_FILE_BYTES

    store = _store(home)
    table = store.ensure_table(ORDERS)
    with table.transaction() as tx:
        # Every contender writes with the same target file size.
        tx.set_properties({"write.target-file-size-bytes": str(DEFAULT_TARGET_FILE_BYTES)})
    data = ORDERS.conform(pq.read_table(base)).sort_by("order_id")
    table.append(data)


def _affected_files(table, batch) -> list[tuple[str, object]]:
    """For the floor, before the clock: each data file holding a key the batch updates or
    deletes, with exactly those keys (so the timed part only reads, filters and writes)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    keys = batch["order_id"]
    out = []
    for task in table.scan().plan_files():
        path = task.file.file_path
        held = pq.read_table(path.removeprefix("file://"), columns=["order_id"])["order_id"]
        gone = held.filter(pc.is_in(held, value_set=keys)).combine_chunks()
        if len(gone):
            out.append((path, gone))
    return out


def run(contender: str, home: Path, batch_path: str, marker: Path, result_path: Path) -> None:
    import resource
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from pyiceberg.expressions import In

    from lakehouse.contracts.tables import ORDERS
    from lakehouse.io.file_rewrite import WORKERS
    from lakehouse.io.merge_rules import plan_merge, tombstone_schema
    from lakehouse.io.table_store import CommitStamp

    extra: dict = {}
    if contender == "spark":
        store, extra["jvm_start"] = _spark_store(home)
    else:
        store = _store(home)
    stamp = CommitStamp(run_id="bench", asset_key="silver/orders")
    batch = ORDERS.conform(pq.read_table(batch_path))
    table = store.load_table(ORDERS)
    files_before = {t.file.file_path for t in table.scan().plan_files()}
    floor_files = _affected_files(table, batch) if contender == "floor" else []
    if contender == "spark":
        # Warm up once, untimed: the same merge on a branch of its own (so main, which the timed
        # merge changes, stays as built), which is then removed. The first statements of a session
        # load and compile most of what a merge runs (Spark's planner, Iceberg's classes, codegen).
        warm = "bench-warmup"
        store.start_audit(ORDERS, warm)  # on the table and its tombstones table
        start = time.perf_counter()
        store.merge(ORDERS, batch, stamp, branch=warm)
        extra["warmup"] = time.perf_counter() - start
        for suffix in ("", "__tombstones"):
            with store.load_table(ORDERS, suffix).manage_snapshots() as refs:
                refs.remove_branch(warm)

    marker.write_text(str(time.time()))
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    jvm_cpu = _children_cpu(os.getpid())
    start = time.perf_counter()
    if contender in ("merge", "spark"):
        result = store.merge(ORDERS, batch, stamp)
        extra["counts"] = result.counts
    elif contender == "upsert":
        upserts = batch.filter(pc.invert(batch["_is_delete"])).drop_columns(["_is_delete"]).cast(ORDERS.arrow_schema)
        deletes = batch.filter(batch["_is_delete"])["order_id"].to_pylist()
        with table.transaction() as tx:
            res = tx.upsert(upserts, join_cols=["order_id"])
            tx.delete(In("order_id", deletes))
        extra["counts"] = {"inserted": res.rows_inserted, "updated": res.rows_updated}
    elif contender == "rewrite":
        whole = table.scan().to_arrow()
        tombs_table = store._tombstones(ORDERS)
        tombs = tombs_table.scan().to_arrow() if tombs_table.current_snapshot() else tombstone_schema(ORDERS).empty_table()
        plan = plan_merge(ORDERS, batch, whole.select(["order_id", "lsn"]), tombs)
        keep = whole.filter(pc.invert(pc.is_in(whole["order_id"], value_set=plan.remove_keys)))
        merged = pa.concat_tables([keep.cast(ORDERS.arrow_schema), plan.upserts]).sort_by("order_id")
        del whole, keep
        if len(plan.tombstones):
            tombs_table.append(plan.tombstones)
        with table.transaction() as tx:
            tx.overwrite(merged, snapshot_properties=stamp.properties())
        extra["counts"] = {"inserted": plan.inserted, "updated": plan.updated, "deleted": plan.deleted}
    elif contender == "floor":
        out = home / "floor"
        out.mkdir()

        def redo(i, path, gone):
            data = pq.read_table(path.removeprefix("file://"))
            kept = data.filter(pc.invert(pc.is_in(data["order_id"], value_set=gone)))
            pq.write_table(kept, out / f"{i}.parquet", compression="zstd")

        def insert():
            new_rows = batch.filter(pc.invert(batch["_is_delete"])).drop_columns(["_is_delete"])
            pq.write_table(new_rows, out / "new.parquet", compression="zstd")

        with ThreadPoolExecutor(max_workers=WORKERS) as pool:  # as many workers as the merge uses
            jobs = [pool.submit(redo, i, path, gone) for i, (path, gone) in enumerate(floor_files)]
            jobs.append(pool.submit(insert))
            for job in jobs:
                job.result()
        extra["files_rewritten"] = len(floor_files)
    seconds = time.perf_counter() - start
    used = resource.getrusage(resource.RUSAGE_SELF)
    # CPU time of all the process's threads: less sensitive than wall time to other work on the machine.
    extra["cpu"] = used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime
    # ... and of its child processes, still running (the Spark JVM; the others start none).
    extra["cpu"] += sum(t - jvm_cpu.get(pid, 0.0) for pid, t in _children_cpu(os.getpid()).items())

    if contender != "floor":
        table = store.load_table(ORDERS)
        snap = table.current_snapshot()
        extra["rows_after"] = int(snap.summary["total-records"])
        files_after = {t.file.file_path for t in table.scan().plan_files()}
        extra["files_rewritten"] = len(files_before - files_after)
    extra["files_before"] = len(files_before)
    # VmHWM, not getrusage's ru_maxrss: the latter carries over the parent's peak through fork+exec.
    # With the JVM's own (the Spark contender's): the sum of the two peaks.
    result_path.write_text(json.dumps({"seconds": seconds, "peak_rss": _tree_hwm(os.getpid()), **extra}))


# ---- the parent --------------------------------------------------------------------------------
def _hwm(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    import psutil

    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def _tree_hwm(pid: int) -> int:
    """The sum of the peak RSS of ``pid`` and of each of its descendants (the Spark JVM)."""
    return _hwm(pid) + sum(_hwm(child) for child in _descendants(pid))


def _children_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system, all threads) so far of each descendant of ``pid``."""
    import psutil

    out = {}
    for child in _descendants(pid):
        try:
            t = psutil.Process(child).cpu_times()
            out[child] = t.user + t.system
        except psutil.Error:
            pass
    return out


def measure(contender: str, home: Path, data: dict, timeout: float, repeat: int) -> dict:
    """Build the table (untimed, its own process), then run the contender in a fresh process,
    ``repeat`` times on a fresh copy of the table when a run takes under a minute; the fastest run
    is kept (the others' times are listed), and the highest peak RSS of all runs."""
    me = [sys.executable, str(Path(__file__).resolve())]
    subprocess.run([*me, "_build", str(home), data["base"]], check=True)
    pristine = home.with_name(home.name + ".built")
    shutil.copytree(home, pristine)
    runs: list[dict] = []
    for attempt in range(repeat):
        if attempt:
            if runs[-1].get("timeout") or "error" in runs[-1] or runs[-1]["seconds"] > 60:
                break
            shutil.rmtree(home)
            shutil.copytree(pristine, home)  # same path: Iceberg metadata holds absolute paths
        runs.append(_run_once(me, contender, home, data, timeout))
    shutil.rmtree(pristine, ignore_errors=True)
    best = min(runs, key=lambda r: r["seconds"] if "error" not in r else float("inf"))
    out = {**best, "peak_rss": max(r["peak_rss"] for r in runs), "runs": [r["seconds"] for r in runs]}
    for key in ("jvm_start", "warmup"):  # the Spark contender's untimed parts, of every run
        if any(key in r for r in runs):
            out[key + "_runs"] = [r[key] for r in runs if key in r]
    return out


def _run_once(me: list[str], contender: str, home: Path, data: dict, timeout: float) -> dict:
    marker, result = home / "started", home / "result.json"
    # A session of its own, so that a stop also ends the child's children (the Spark JVM).
    child = subprocess.Popen([*me, "_run", contender, str(home), data["batch"], str(marker), str(result)], start_new_session=True)
    peak = 0
    started = None
    try:
        while child.poll() is None:
            peak = max(peak, _tree_hwm(child.pid))
            if started is None and marker.exists():
                started = float(marker.read_text() or time.time())
            if started is not None and time.time() - started > timeout:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
                return {"timeout": True, "seconds": timeout, "peak_rss": peak}
            time.sleep(0.2)
    except BaseException:  # Ctrl-C reaches only this process now: stop the child's session too
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        raise
    if child.returncode != 0:
        return {"error": f"exit code {child.returncode}", "seconds": float("nan"), "peak_rss": peak}
    out = json.loads(result.read_text())
    out["peak_rss"] = max(out["peak_rss"], peak)
    return out


def _fmt_seconds(r: dict) -> str:
    if r.get("timeout"):
        return f"> {r['seconds']:.0f}"
    if "error" in r:
        return r["error"]
    return f"{r['seconds']:.2f}"


def report(scenario: str, data: dict, rows: int, results: dict[str, dict], timeout: float) -> list[str]:
    batch = data["updates"] + data["inserts"] + data["deletes"]
    expected = rows + data["inserts"] - data["deletes"]
    lines = [
        f"scenario {scenario}: table {rows:,} rows, batch {batch:,} events "
        f"({data['updates']:,} updates, {data['inserts']:,} inserts, {data['deletes']:,} deletes)",
        f"  {'contender':<26} {'wall s':>9} {'cpu s':>7} {'rows/s':>11} {'peak RSS MiB':>13} {'files rewritten':>16} {'rows after':>11}",
    ]
    for name, r in results.items():
        ok = "timeout" not in r and "error" not in r
        rate = f"{batch / r['seconds']:,.0f}" if ok else (f"< {batch / timeout:,.0f}" if r.get("timeout") else "-")
        files = f"{r.get('files_rewritten', '-')}/{r.get('files_before', '-')}" if ok else "-"
        after = r.get("rows_after", "-")
        flag = "" if after in ("-", expected) else " (!)"
        rss = f"{r['peak_rss'] / 2**20:,.0f}" + (" (at stop)" if r.get("timeout") else "")
        cpu = f"{r['cpu']:.2f}" if ok else "-"
        lines.append(f"  {LABELS[name]:<26} {_fmt_seconds(r):>9} {cpu:>7} {rate:>11} {rss:>13} {files:>16} {after!s:>11}{flag}")
    lines.append(f"  expected rows after: {expected:,}")
    sp = results.get("spark")
    if sp and "jvm_start" in sp:
        lines.append(f"  {LABELS['spark']}, before the clock: JVM start {sp['jvm_start']:.2f} s, warm-up merge {sp['warmup']:.2f} s"
                     " (the fastest run's; peak RSS and cpu s are the Python process's and the JVM's together)")
    m = results.get("merge")
    if m and "error" not in m and not m.get("timeout"):
        for name in ("upsert", "rewrite", "spark"):
            r = results.get(name)
            if not r or "error" in r:
                continue
            bound = ">" if r.get("timeout") else ""
            lines.append(f"  time {LABELS[name]} / {LABELS['merge']}: {bound}{r['seconds'] / m['seconds']:.2f}")
        f = results.get("floor")
        if f and "error" not in f and not f.get("timeout"):
            lines.append(f"  time {LABELS['merge']} / {LABELS['floor']}: {m['seconds'] / f['seconds']:.2f} (cpu time: {m['cpu'] / f['cpu']:.2f})")
        if "rewrite" in results:
            lines.append(f"  peak RSS {LABELS['merge']} / {LABELS['rewrite']}: {m['peak_rss'] / results['rewrite']['peak_rss']:.2f}")
        lines += goals(results)
    return lines


def goals(results: dict[str, dict]) -> list[str]:
    """The Arrow merge's goals ((5), the Spark store, has none: see the module's docstring)."""
    m, up, rw, fl = (results.get(k) for k in ("merge", "upsert", "rewrite", "floor"))
    out = []
    if up:
        ratio = up["seconds"] / m["seconds"]
        out.append(f"  goal >= 20x faster than upsert: {'met' if ratio >= 20 else 'missed'} ({'>' if up.get('timeout') else ''}{ratio:.1f}x)")
    if rw and "error" not in rw:
        share = m.get("files_rewritten", 0) / max(1, m.get("files_before", 1))
        verdict = "met" if m["seconds"] < rw["seconds"] else ("missed" if share < 0.5 else "n/a (half or more of the files affected)")
        out.append(f"  goal faster than full rewrite when < half the files are affected ({share:.0%} rewritten): {verdict}")
        out.append(f"  goal peak RSS below full rewrite: {'met' if m['peak_rss'] < rw['peak_rss'] else 'missed'}")
    if fl and "error" not in fl:
        ratio = m["seconds"] / fl["seconds"]
        out.append(f"  goal within 2x of the floor: {'met' if ratio <= 2 else 'missed'} ({ratio:.2f}x)")
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_build":
        build(Path(argv[1]), argv[2])
        return 0
    if argv and argv[0] == "_run":
        run(argv[1], Path(argv[2]), argv[3], Path(argv[4]), Path(argv[5]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows in the Silver table (default 5,000,000)")
    parser.add_argument("--batch", type=int, default=500_000, help="CDC events in the batch (default 500,000)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds before a contender is stopped (default 900)")
    parser.add_argument("--scenarios", default="recent,uniform", help="recent, uniform or both (default recent,uniform)")
    parser.add_argument("--recent-fraction", type=float, default=0.1, help="share of newest keys that 'recent' updates hit (default 0.1)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS), help=f"subset of {','.join(CONTENDERS)}")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each contender that takes under a minute; the fastest counts (default 3)")
    parser.add_argument("--workdir", help="where data and tables go (default: a temporary directory, removed after)")
    args = parser.parse_args(argv)

    contenders = args.contenders.split(",")
    unknown = [c for c in contenders if c not in CONTENDERS]
    if unknown:
        parser.error(f"unknown contender(s) {', '.join(unknown)}: choose from {','.join(CONTENDERS)}")
    print(f"merge benchmark: {args.rows:,} rows, batch {args.batch:,}, timeout {args.timeout:.0f} s, "
          f"{os.cpu_count()} cores, Python {sys.version.split()[0]}", flush=True)
    if "spark" in contenders:
        from lakehouse.resources.iceberg_spark import FETCH_COMMAND, missing_jars

        missing = missing_jars(SPARK_JARS)
        if missing:
            contenders.remove("spark")
            print(f"  skipping {LABELS['spark']}: {SPARK_JARS} lacks {', '.join(missing)} "
                  f"(fetch them with `{FETCH_COMMAND}`, or set LAKEHOUSE_SPARK_JARS to the folder that holds them)", flush=True)
    if not contenders:
        return 0
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="merge-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        for scenario in args.scenarios.split(","):
            data = generate(work, args.rows, args.batch, scenario, args.recent_fraction)
            results = {}
            for contender in contenders:
                home = work / f"{scenario}-{contender}"
                shutil.rmtree(home, ignore_errors=True)
                results[contender] = measure(contender, home, data, args.timeout, args.repeat)
                runs = ", ".join(f"{x:.2f}" for x in results[contender]["runs"])
                for key, name in (("jvm_start_runs", "JVM start"), ("warmup_runs", "warm-up")):
                    if key in results[contender]:
                        runs += f"; {name}: " + ", ".join(f"{x:.2f}" for x in results[contender][key])
                print(f"  [{scenario}] {LABELS[contender]}: {_fmt_seconds(results[contender])} s (runs: {runs}; "
                      f"load average {os.getloadavg()[0]:.1f})", flush=True)
                shutil.rmtree(home, ignore_errors=True)
            print("\n".join(report(scenario, data, args.rows, results, args.timeout)), flush=True)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
