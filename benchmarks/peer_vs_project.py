"""Issue 16 in one command: `lakehouse refresh` against a hand-written peer, on the same landed data.

For N order events (default 1,000,000 over 10 landing days; `lakehouse land-sample`, seed 1), in a
fresh temp home (its own LAKEHOUSE_HOME and DAGSTER_HOME, never ~):
  peer     benchmarks/peer.py on the landing zone (DuckDB + pyiceberg, its own SQL catalog), just
           before and just after (a); the faster of the two counts
  (a)      full `lakehouse refresh`                               goal: (a) <= 3x peer
  check    peer == project: silver.orders on the contract columns and gold.daily_sales, as sets
           of rows (and lakehouse_tests/reference.py's expected_state, up to --reference-max events)
  (b)      1% new events on the next day (seed 2), `lakehouse refresh`   goal: (b) <= 10% of (a)
  check    the peer again on the whole landing zone == the project after its incremental refresh
  (c)      `lakehouse refresh` with nothing new (median of 3)     goal: <= 2 s
  memory   peak RSS of (a)'s whole process tree (Python + JVM + dbt)   goal: <= 2 GiB
Then at 5N (--scale): a full refresh of 5N events, the same increment (byte for byte the files of
(b)) and (b') `lakehouse refresh`                                  goal: (b') <= 1.2x (b)

Every command runs in a subprocess; the peak RSS of its process tree (the process and all its
children, summed) is polled with psutil every 0.1 s. After each refresh its Dagster event log
(in the home's DAGSTER_HOME) gives where its seconds went: before the first run (process start,
imports, planning), each run's setup, each step (compute and write, then checks and events),
between runs, after the last one. With --profile, the full, the 1% and a no-op refresh of N also
run under py-spy (`pip install py-spy`; sampling 50/s without pausing the process, in their own
copy of the home, after the timed runs) and the samples are grouped by what the main thread was
doing (imports by package, JVM start, Spark jobs by their caller, merge, commits, checks, dbt,
Dagster's event log).

    python benchmarks/peer_vs_project.py                          # N = 1,000,000 and 5,000,000
    python benchmarks/peer_vs_project.py --events 200000 --scale 5
    python benchmarks/peer_vs_project.py --events 100000 --scale 0 --profile
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

import peer_check  # noqa: E402

START = dt.date(2026, 1, 1)
EVENTS_PER_ORDER = 1.383  # records per order of the sample generator (measured: 1.383-1.393)
GIB = 2**30
GOALS = {
    "full_vs_peer": 3.0,  # (a) / peer, at most
    "inc_share": 0.10,  # (b) / (a), at most
    "inc_5x": 1.2,  # (b') / (b), at most
    "noop_s": 2.0,  # (c), seconds, at most
    "full_rss": 2 * GIB,  # peak RSS of (a)'s process tree, at most
}
LAKEHOUSE = [sys.executable, "-m", "lakehouse.cli"]


# --- running and measuring a command -----------------------------------------------------------------
@dataclass
class Measured:
    wall: float
    peak_rss: int
    started: float  # epoch seconds, just before the process was started
    ended: float
    stdout: str
    stderr: str
    samples: int = 0
    load: float = 0.0  # 1-minute load average when it ended

    @property
    def note(self) -> str:
        return f"load average {self.load:.1f}"


def tree_rss(proc: psutil.Process) -> int:
    """RSS of a process and all its descendants, summed (pages shared between them count twice)."""
    total = 0
    try:
        family = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in family:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def _stop_tree(proc: subprocess.Popen) -> None:
    """Stop the process this script started and its descendants, by pid."""
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        family = []
    for p in [*family, psutil.Process(proc.pid)]:
        try:
            p.kill()
        except psutil.Error:
            pass
    proc.wait(timeout=60)


def measure(cmd: list[str], env: dict, logs: Path, timeout: float, poll: float = 0.1) -> Measured:
    """Run ``cmd``, polling the peak RSS of its process tree; its output goes to ``logs``.*. Fails
    on a non-zero exit; stops the process tree after ``timeout`` seconds."""
    logs.parent.mkdir(parents=True, exist_ok=True)
    out_path, err_path = logs.with_suffix(".out"), logs.with_suffix(".err")
    with open(out_path, "w") as out, open(err_path, "w") as err:
        started = time.time()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, cwd=ROOT)
        watched = psutil.Process(proc.pid)
        peak = samples = 0
        deadline = t0 + timeout
        while proc.poll() is None:  # bounded by the deadline
            if time.perf_counter() > deadline:
                _stop_tree(proc)
                sys.exit(f"{' '.join(cmd)} still running after {timeout:.0f} s: stopped (output in {out_path})")
            peak = max(peak, tree_rss(watched))
            samples += 1
            time.sleep(poll)
        wall = time.perf_counter() - t0
        ended = time.time()
    stdout, stderr = out_path.read_text(), err_path.read_text()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stdout[-3000:]}\n{stderr[-3000:]}")
    return Measured(wall, peak, started, ended, stdout, stderr, samples, os.getloadavg()[0])


def env_for(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "DAGSTER_"))}
    return {**env, "LAKEHOUSE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "PYTHONPATH": str(ROOT)}


def count_records(files: list[Path]) -> int:
    """Non-blank lines of order landing files (the records, valid or not)."""
    n = 0
    for path in files:
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        n += sum(1 for line in data.split(b"\n") if line.strip())
    return n


def order_files(landing: Path) -> set[Path]:
    return set(Path(landing, "orders").rglob("*.jsonl*"))


def land(home: Path, logs: Path, seed: int, days: int, orders_per_day: int, start: dt.date) -> tuple[int, float]:
    """(order records landed, seconds) of one `lakehouse land-sample`."""
    before = order_files(home / "landing")
    m = measure([*LAKEHOUSE, "land-sample", "--seed", str(seed), "--days", str(days), "--orders-per-day", str(orders_per_day),
                 "--start", start.isoformat()], env_for(home), logs, timeout=3600)
    return count_records(sorted(order_files(home / "landing") - before)), m.wall


def refresh(home: Path, logs: Path, timeout: float, profile: Path | None = None) -> Measured:
    cmd = [*LAKEHOUSE, "refresh"]
    if profile is not None:
        py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
        if py_spy is None:
            sys.exit("--profile needs py-spy: pip install py-spy")
        cmd = [py_spy, "record", "--idle", "--threads", "--nonblocking", "--rate", "50", "--format", "raw", "--output", str(profile),
               "--", *cmd]
    m = measure(cmd, env_for(home), logs, timeout)
    if "nothing to do" not in m.stdout and " succeeded in " not in m.stdout:
        sys.exit(f"unexpected refresh output in {logs}.out")
    return m


def run_peer(landing: Path, warehouse: Path, logs: Path, timeout: float) -> tuple[Measured, dict]:
    if warehouse.exists():
        shutil.rmtree(warehouse)
    m = measure([sys.executable, str(HERE / "peer.py"), str(landing), str(warehouse), "--json"], env_for(warehouse), logs, timeout)
    return m, json.loads(m.stdout.strip().splitlines()[-1])


# --- where a refresh's seconds went, from its Dagster event log ----------------------------------------
@dataclass
class Breakdown:
    rows: list[tuple[str, float]] = field(default_factory=list)

    def add(self, name: str, seconds: float) -> None:
        self.rows.append((name, max(0.0, seconds)))


def event_breakdown(home: Path, m: Measured) -> Breakdown:
    """Where the wall time of a refresh went, from the events of the runs it made."""
    import dagster as dg

    out = Breakdown()
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        records = [r for r in instance.get_run_records() if r.create_timestamp.timestamp() >= m.started - 1]
        records.sort(key=lambda r: r.create_timestamp)
        previous_end = m.started
        for index, record in enumerate(records):
            run = record.dagster_run
            events = instance.all_logs(run.run_id)
            first = events[0].timestamp
            out.add("before the first run: process start, imports, planning, Spark start begun" if index == 0
                    else f"between runs: Gold planning, {run.job_name} run created", first - previous_end)
            steps: dict[str, list] = defaultdict(list)
            for e in events:
                if e.step_key:
                    steps[e.step_key].append(e)
            starts = {k: next((e.timestamp for e in v if e.dagster_event and e.dagster_event.event_type_value == "STEP_START"), None)
                      for k, v in steps.items()}
            started_steps = sorted((t, k) for k, t in starts.items() if t is not None)
            if not started_steps:
                continue
            out.add(f"{run.job_name}: run setup (planned events, run start, resources)", started_steps[0][0] - first)
            cursor = started_steps[0][0]
            for t, key in started_steps:
                if t - cursor > 0.05:
                    out.add(f"{run.job_name}: between steps", t - cursor)
                ev = steps[key]
                done = next((e.timestamp for e in ev if e.dagster_event and e.dagster_event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE")), ev[-1].timestamp)
                materialized = next((e.timestamp for e in ev if e.dagster_event and e.dagster_event.event_type_value == "ASSET_MATERIALIZATION"), None)
                checked = next((e.timestamp for e in ev if e.dagster_event and e.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION"), None)
                split = materialized or checked
                if split is None or key.endswith("records_accounted_for"):
                    out.add(f"{run.job_name}: {key}", done - t)
                else:
                    out.add(f"{run.job_name}: {key}: compute and write", split - t)
                    out.add(f"{run.job_name}: {key}: materialization events and checks", done - split)
                cursor = done
            out.add(f"{run.job_name}: run end", events[-1].timestamp - cursor)
            previous_end = events[-1].timestamp
        out.add("after the last run: report, exit" if records else "whole command (no run)", m.ended - previous_end)
    return out


# --- py-spy samples, grouped --------------------------------------------------------------------------------
def _where(frame: str) -> str:
    """`function (lakehouse/x.py:12)` -> `function (x.py:12)`."""
    name, _, place = frame.partition(" (")
    return f"{name} ({place.rstrip(')').split('lakehouse/')[-1]})"


def classify(frames: list[str]) -> tuple[str, str | None]:
    """(bucket, detail) of one main-thread stack (outermost frame first)."""
    text = ";".join(frames)
    lakehouse = [f for f in frames if "lakehouse/" in f and "lakehouse/cli.py" not in f]
    deepest = _where(lakehouse[-1]) if lakehouse else None
    if "_find_and_load" in text:
        modules = [f for f in frames if f.startswith("<module> (")]
        path = modules[-1].partition(" (")[2].rstrip(")").split(":")[0] if modules else "?"
        package = path.split("site-packages/")[-1].split("/")[0].removesuffix(".py")
        return "imports (Python modules, first use), by the package being imported", package
    if "dbt_models.py" in text or "resources/dbt.py" in text or "dagster_dbt" in text:
        return "dbt step (dbt-duckdb subprocess, its log lines, publishing the models)", None
    if any(m in text for m in ("_init_session", "launch_gateway", "SparkContext.__init__", "getOrCreate")):
        return "Spark session start (JVM), waited for by the main thread", None
    if "py4j" in text or "pyspark" in text:
        return "Spark jobs and calls (waiting on the JVM), by caller", deepest
    if "pyiceberg" in text and any(m in text for m in ("commit", "catalog/sql", "load_table", "create_table")):
        return "Iceberg catalog and commits (pyiceberg, SQLite)", deepest
    if "io/arrow_merge" in text or "io/file_rewrite" in text or "merge_rules" in text:
        return "merge and file rewrite (Arrow, pyiceberg writer)", deepest
    if "lakehouse/checks" in text:
        return "checks (DuckDB on the written rows)", deepest
    if "dagster/_core/storage" in text or ("sqlalchemy" in text and "dagster" in text and "pyiceberg" not in text):
        return "Dagster event log and run storage (SQLite)", None
    if lakehouse:
        return "other lakehouse code (planning, reads, Arrow)", deepest
    if "dagster" in text:
        return "Dagster (job build, run and step machinery)", None
    return "no Python frame (interpreter start and exit, native code)", None


def profile_breakdown(raw: Path) -> dict:
    """Main-thread samples of a py-spy raw file (`--threads --idle`, 50/s), by bucket, with the
    lakehouse callers of Spark and of the rest; and the Spark warm-up thread's samples."""
    buckets: Counter = Counter()
    details: dict[str, Counter] = defaultdict(Counter)
    warm_up = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        if frames[0].endswith("spark-warm-up"):
            warm_up += int(count)
        if not frames[0].endswith("MainThread"):
            continue
        bucket, detail = classify(frames[1:])
        buckets[bucket] += int(count)
        if detail:
            details[bucket][detail] += int(count)
    return {"buckets": buckets, "details": details, "warm_up": warm_up, "per_sample": 1 / 50}


# --- one size -------------------------------------------------------------------------------------------------
def orders_per_day(events: int, days: int) -> int:
    return max(5, round(events / days / EVENTS_PER_ORDER))


def run_size(events: int, days: int, work: Path, increment_opd: int, args, first: bool) -> dict:
    """At one size: land ``events`` over ``days``; the peer; the full refresh; the check; the
    increment and its refresh; the peer again and the check. For the first size also the
    refreshes with nothing new and, with --profile, the profiled runs."""
    home, logs = work / "home", work / "logs"
    opd = orders_per_day(events, days)
    r: dict = {"orders_per_day": opd, "problems": []}
    r["records"], r["land_s"] = land(home, logs / "land", 1, days, opd, START)
    print(f"N={r['records']:,} order events ({days} days x {opd:,} orders; landed in {r['land_s']:.1f} s)", flush=True)
    def peer_run(label: str) -> Measured:
        pm, r["peer"] = run_peer(home / "landing", work / "peer", logs / label, args.timeout)
        print(f"  peer                   {pm.wall:7.1f} s   peak RSS {pm.peak_rss / 2**20:6.0f} MiB   {pm.note}   "
              f"(in-process {r['peer']['seconds']:.1f} s: " + ", ".join(f"{k} {v:.1f}" for k, v in r["peer"]["timings"].items()) + ")", flush=True)
        return pm

    # The peer runs just before and just after the full refresh, on the same data: on a machine
    # whose load changes, the faster of the two counts (both are printed).
    peer_runs = [peer_run("peer")]
    if first and args.profile:
        shutil.copytree(home, work / "profile-home")  # the landed home before any refresh, for the profiled runs
    m = refresh(home, logs / "full", args.timeout)
    r["full_s"], r["full_rss"], r["full_breakdown"] = m.wall, m.peak_rss, event_breakdown(home, m)
    print(f"  (a) full refresh       {m.wall:7.1f} s   peak RSS {m.peak_rss / 2**20:6.0f} MiB   {m.note}", flush=True)
    peer_runs.append(peer_run("peer-again"))
    r["peer_runs"] = [pm.wall for pm in peer_runs]
    r["peer_s"], r["peer_rss"] = min(r["peer_runs"]), max(pm.peak_rss for pm in peer_runs)
    r["problems"] += check(home, work / "peer", r["records"] <= args.reference_max, f"at {r['records']:,} events after the full refresh")
    r["inc_records"], _ = land(home, logs / "land-inc", 2, 1, increment_opd, START + dt.timedelta(days=days))
    m = refresh(home, logs / "inc", args.timeout)
    r["inc_s"], r["inc_rss"], r["inc_breakdown"] = m.wall, m.peak_rss, event_breakdown(home, m)
    print(f"  (b) refresh after {r['inc_records']:,} new events ({r['inc_records'] / r['records']:.2%})   {m.wall:7.1f} s   "
          f"peak RSS {m.peak_rss / 2**20:6.0f} MiB   {m.note}", flush=True)
    _, r["peer_after"] = run_peer(home / "landing", work / "peer", logs / "peer-after-inc", args.timeout)
    r["problems"] += check(home, work / "peer", False, f"at {r['records']:,} events after the refresh of the increment")
    if first:
        noops = [refresh(home, logs / f"noop{i}", args.timeout) for i in range(3)]
        r["noop_s"] = [n.wall for n in noops]
        print("  (c) nothing new        " + ", ".join(f"{n.wall:.2f} s ({n.note})" for n in noops), flush=True)
    if first and args.profile:
        ph, profiles = work / "profile-home", {}
        for name in ("full", "inc", "noop"):
            if name == "inc":
                land(ph, logs / "profile-land-inc", 2, 1, increment_opd, START + dt.timedelta(days=days))
            pm = refresh(ph, logs / f"profile-{name}", args.timeout, profile=work / f"profile-{name}.txt")
            profiles[name] = (pm.wall, profile_breakdown(work / f"profile-{name}.txt"))
            print(f"  py-spy: {name} refresh {pm.wall:.1f} s under the profiler ({pm.note})", flush=True)
        r["profile"] = profiles
    return r


def check(home: Path, peer_warehouse: Path, with_reference: bool, when: str) -> list[str]:
    named = {"project": peer_check.project_tables(home), "peer": peer_check.peer_tables(peer_warehouse)}
    if with_reference:
        named["reference"], _ = peer_check.reference_tables(home / "landing")
    problems = peer_check.compare(named)
    sizes = ", ".join(f"{k} {len(v['silver.orders']):,} / {len(v['gold.daily_sales']):,}" for k, v in named.items())
    print(f"  check {when}: silver.orders / gold.daily_sales rows: {sizes}: " + ("equal" if not problems else "DIFFERENT"), flush=True)
    for line in problems:
        print("    " + line, flush=True)
    return [f"{when}: {line}" for line in problems]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_breakdown(title: str, total: float, b: Breakdown) -> None:
    print(f"  {title} ({total:.1f} s)")
    for name, seconds in b.rows:
        if seconds >= 0.05:
            print(f"    {seconds:7.2f} s  {seconds / total:6.1%}  {name}")


def print_profile(title: str, wall: float, p: dict) -> None:
    per, total = p["per_sample"], sum(p["buckets"].values())
    print(f"  py-spy, {title}: {wall:.1f} s wall under py-spy; main thread {total * per:.1f} s "
          f"(the Spark warm-up thread, alongside: {p['warm_up'] * per:.1f} s)")
    for name, n in p["buckets"].most_common():
        print(f"    {n * per:7.2f} s  {n / total:6.1%}  {name}")
        for detail, k in p["details"].get(name, Counter()).most_common(8):
            if k * per >= 0.2:
                print(f"               {k * per:7.2f} s  {detail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="order events of the first size, N (approximate: whole orders per day)")
    parser.add_argument("--days", type=int, default=10, help="landing days they are spread over")
    parser.add_argument("--scale", type=int, default=5, help="second size = N x scale with the same increment (0: only N)")
    parser.add_argument("--workdir", type=Path, help="keep everything here (default: a temp dir, removed)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds any one command may take")
    parser.add_argument("--reference-max", type=int, default=300_000, help="compare with reference.py up to this many events (slow)")
    parser.add_argument("--profile", action="store_true", help="also profile the full, the 1%% and a no-op refresh of N with py-spy")
    args = parser.parse_args()
    machine = f"{psutil.cpu_count()} cores, {psutil.virtual_memory().total / GIB:.0f} GiB, Python {sys.version.split()[0]}"
    load = os.getloadavg()
    print(f"peer vs project: N={args.events:,} events over {args.days} days, scale {args.scale}; {machine}; "
          f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}", flush=True)
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="peer-vs-project-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        increment_opd = max(5, orders_per_day(args.events, args.days) * args.days // 100)
        first = run_size(args.events, args.days, work / "n1", increment_opd, args, first=True)
        big = run_size(args.events * args.scale, args.days, work / f"n{args.scale}", increment_opd, args, first=False) if args.scale else None
    load = os.getloadavg()
    print(f"\nwhole benchmark {time.perf_counter() - t_all:.0f} s; load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    print_breakdown("where (a), the full refresh, went (Dagster event log)", first["full_s"], first["full_breakdown"])
    print_breakdown("where (b), the 1% refresh, went", first["inc_s"], first["inc_breakdown"])
    if big:
        print(f"  at {args.scale}N: peer {big['peer_s']:.1f} s, (a) full refresh of {big['records']:,} events {big['full_s']:.1f} s "
              f"(peak RSS {big['full_rss'] / 2**20:.0f} MiB), (b') the same {big['inc_records']:,} new events {big['inc_s']:.1f} s")
        print_breakdown("where (b'), the same increment on the 5x table, went", big["inc_s"], big["inc_breakdown"])
    if "profile" in first:
        print_profile("full refresh", *first["profile"]["full"])
        print_profile("1% refresh", *first["profile"]["inc"])
        print_profile("refresh with nothing new", *first["profile"]["noop"])
    noop = statistics.median(first["noop_s"])
    rows = [
        ("full refresh vs peer", f"(a) <= {GOALS['full_vs_peer']:.0f}x peer",
         f"{first['full_s'] / first['peer_s']:.2f}x ({first['full_s']:.1f} s vs peer " + " / ".join(f"{x:.1f}" for x in first["peer_runs"]) + " s)",
         first["full_s"] / first["peer_s"] <= GOALS["full_vs_peer"]),
        ("1% refresh / full refresh", f"(b) <= {GOALS['inc_share']:.0%} of (a)",
         f"{first['inc_s'] / first['full_s']:.1%} ({first['inc_s']:.1f} s / {first['full_s']:.1f} s)", first["inc_s"] / first["full_s"] <= GOALS["inc_share"]),
    ]
    if big:
        rows.append((f"same increment, table {args.scale}x larger", f"(b') <= {GOALS['inc_5x']}x (b)",
                     f"{big['inc_s'] / first['inc_s']:.2f}x ({big['inc_s']:.1f} s vs {first['inc_s']:.1f} s)", big["inc_s"] / first["inc_s"] <= GOALS["inc_5x"]))
    rows += [
        ("refresh with nothing new", f"(c) <= {GOALS['noop_s']:.0f} s", f"{noop:.2f} s (median of " + ", ".join(f"{s:.2f}" for s in first["noop_s"]) + ")",
         noop <= GOALS["noop_s"]),
        ("peak RSS of (a), process tree", "<= 2 GiB", f"{first['full_rss'] / GIB:.2f} GiB ({first['full_rss'] / 2**20:,.0f} MiB)", first["full_rss"] <= GOALS["full_rss"]),
    ]
    problems = first["problems"] + (big["problems"] if big else [])
    print(f"\nN = {first['records']:,} order events ({args.days} days), increment {first['inc_records']:,} events; peer: "
          f"{first['peer']['silver_rows']:,} silver.orders rows, {first['peer']['daily_sales_rows']:,} daily_sales rows")
    print(f"  {'figure':<36} {'goal':<18} {'measured':<44} result")
    for name, goal, measured, ok in rows:
        print(f"  {name:<36} {goal:<18} {measured:<44} {verdict(ok)}")
    print(f"  {'peer output == project output':<36} {'equal':<18} {'equal' if not problems else f'{len(problems)} difference line(s) above':<44} "
          f"{verdict(not problems)}")


if __name__ == "__main__":
    main()
