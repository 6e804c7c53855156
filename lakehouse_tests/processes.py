"""Helpers for the crash and race tests: the `lakehouse` and `dagster` CLIs as real processes on
temp homes, every one bounded by a timeout, and the invariants every interrupted or interleaved
history must end in (tables equal to the oracle, each landing file in Bronze exactly once, no
temporaries left, no run left STARTED).

Processes run in their own session, output to files (a JVM that outlived its Python parent would
hold a pipe open for ever); once a process has ended, or run out of time, its process group is
killed, so no Spark JVM of a test survives it.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from lakehouse import faults
from lakehouse.contracts.tables import CUSTOMERS_RAW, ORDERS_RAW
from lakehouse_tests.conftest import make_store
from lakehouse_tests.reference import iter_records, landing_files

ROOT = Path(__file__).resolve().parents[1]
LAND_TIMEOUT = 120
REFRESH_TIMEOUT = 420  # a refresh takes 15-60 s here (JVM start); a hang must not stall the suite
MATERIALIZE_TIMEOUT = 420
PAUSE_TIMEOUT = 600  # how long a paused process waits for its release (LAKEHOUSE_FAULT_TIMEOUT)

SILVER_SELECTION = "bronze/orders_raw,bronze/customers_raw,silver/orders,silver/orders_rejects,silver/customers,silver/customers_rejects"
BRONZE_SOURCES = ((ORDERS_RAW, "orders"), (CUSTOMERS_RAW, "customers"))
ACTIVE = ("STARTING", "STARTED")


# ---- environments ------------------------------------------------------------------------------


def environment(home: Path, dagster_home: Path, **extra: str) -> dict[str, str]:
    """The test process's environment (conftest's reject-rate limit included) for one home."""
    env = dict(os.environ)
    for name in ("LAKEHOUSE_LANDING", "LAKEHOUSE_ENV", faults.FAULT_VARIABLE, faults.FAULT_DIR_VARIABLE, faults.FAULT_TIMEOUT_VARIABLE):
        env.pop(name, None)
    env.update(LAKEHOUSE_HOME=str(home), DAGSTER_HOME=str(dagster_home), SPARK_LOCAL_IP="127.0.0.1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def with_fault(env: dict[str, str], spec: str, fault_dir: Path | None = None) -> dict[str, str]:
    env = dict(env, **{faults.FAULT_VARIABLE: spec, faults.FAULT_TIMEOUT_VARIABLE: str(PAUSE_TIMEOUT)})
    if fault_dir is not None:
        fault_dir.mkdir(parents=True, exist_ok=True)
        env[faults.FAULT_DIR_VARIABLE] = str(fault_dir)
    return env


def prepare_dagster_home(dagster_home: Path) -> None:
    """What `dagster asset materialize` needs: DAGSTER_HOME exists and holds the project's dagster.yaml."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    if not (dagster_home / "dagster.yaml").exists():
        shutil.copy(ROOT / "lakehouse" / "dagster_instance.yaml", dagster_home / "dagster.yaml")


# ---- processes ---------------------------------------------------------------------------------


@dataclass
class Process:
    """A started process whose stdout and stderr go to files."""

    name: str
    args: list[str]
    popen: subprocess.Popen
    out: Path
    err: Path
    started: float

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None


@dataclass
class Finished:
    name: str
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False


def _logs(cwd: Path) -> Path:
    folder = cwd / "process-logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def start(name: str, args: list[str], env: dict[str, str], cwd: Path) -> Process:
    logs = _logs(cwd)
    stem = re.sub(r"[^A-Za-z0-9_.@-]+", "_", name) + f"-{time.monotonic_ns()}"
    out, err = logs / f"{stem}.out", logs / f"{stem}.err"
    with open(out, "wb") as o, open(err, "wb") as e:
        popen = subprocess.Popen(args, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=o, stderr=e, start_new_session=True)
    return Process(name, args, popen, out, err, time.monotonic())


def _kill_group(pgid: int) -> None:
    """SIGKILL what is left of the process group of a process this module started (its JVM)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def finish(proc: Process, timeout: float) -> Finished:
    """Wait for ``proc`` at most ``timeout`` seconds (then kill it, and report it timed out)."""
    timed_out = False
    try:
        proc.popen.wait(timeout=max(0.0, timeout))
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc.pid)
        proc.popen.wait(timeout=60)
    _kill_group(proc.pid)  # the group is named by the pid of its leader, which this module started
    return Finished(
        proc.name, proc.args, proc.popen.returncode, proc.out.read_text(errors="replace"), proc.err.read_text(errors="replace"),
        time.monotonic() - proc.started, timed_out,
    )


def run(name: str, args: list[str], env: dict[str, str], cwd: Path, timeout: float) -> Finished:
    return finish(start(name, args, env, cwd), timeout)


def explain(done: Finished) -> str:
    state = f"TIMED OUT after {done.seconds:.0f} s (killed)" if done.timed_out else f"exit {done.returncode} after {done.seconds:.0f} s"
    return (
        f"{done.name}: {' '.join(done.args)}\n{state}\n--- stdout (tail) ---\n{done.stdout[-4000:]}\n"
        f"--- stderr (tail) ---\n{done.stderr[-12000:]}"
    )


def assert_ended(done: Finished) -> None:
    assert not done.timed_out, f"{done.name} hung:\n{explain(done)}"


def assert_clean_success(done: Finished) -> None:
    assert_ended(done)
    assert done.returncode == 0, explain(done)
    assert "Traceback" not in done.stderr, f"{done.name} printed a traceback:\n{explain(done)}"


def cleanup(*procs: Process) -> None:
    """Kill whatever a failing test left running (its own processes only)."""
    for proc in procs:
        if proc is not None and proc.alive():
            _kill_group(proc.pid)
            try:
                proc.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass


# ---- the commands --------------------------------------------------------------------------------


def lakehouse(*args: str) -> list[str]:
    return [sys.executable, "-m", "lakehouse.cli", *args]


def dagster_materialize(selection: str, partition: str) -> list[str]:
    """`dagster asset materialize` of the venv. One partition: Dagster's CLI refuses a partition
    range unless every selected asset has a single-run backfill policy, and Silver is unpartitioned."""
    script = Path(sys.executable).parent / "dagster"
    return [str(script), "asset", "materialize", "-m", "lakehouse.definitions", "--select", selection, "--partition", partition]


def land(env: dict[str, str], cwd: Path, days: int = 2, orders_per_day: int = 60) -> Finished:
    done = run("land-sample", lakehouse("land-sample", "--days", str(days), "--orders-per-day", str(orders_per_day)), env, cwd, LAND_TIMEOUT)
    assert_ended(done)
    assert done.returncode == 0, explain(done)
    return done


def refresh(env: dict[str, str], cwd: Path, name: str = "refresh") -> Finished:
    done = run(name, lakehouse("refresh"), env, cwd, REFRESH_TIMEOUT)
    assert_ended(done)
    return done


def wait_for_pause(proc: Process, fault_dir: Path, point: str, asset: str, timeout: float) -> Path:
    """The ``.release`` file to create once ``proc`` has paused at ``point``; fails (with its
    output) if it ends or runs out of time first."""
    key = faults.marker(point, asset)
    reached = fault_dir / f"{key}.reached"
    deadline = time.monotonic() + timeout
    while not reached.exists():
        if not proc.alive() or time.monotonic() > deadline:
            done = finish(proc, 0)
            raise AssertionError(f"{proc.name} never paused at {key} (does the point fire?):\n{explain(done)}")
        time.sleep(0.1)
    return fault_dir / f"{key}.release"


def landing_days(landing: Path) -> list[str]:
    return sorted({p.name.split("=", 1)[1] for source in ("orders", "customers") for p in (landing / source).glob("dt=*") if p.is_dir()})


# ---- invariants ----------------------------------------------------------------------------------


def landing_records(landing: Path, source: str) -> dict[str, int]:
    """Bronze file name (``dt=D/<landing file name>.parquet``) -> records of that landing file
    (non-blank lines; a CSV's header is not a record), every landing file of ``source``."""
    counts = {f"{path.parent.name}/{path.name}.parquet": 0 for path in landing_files(landing, source)}
    for source_file, _, _, _ in iter_records(landing, source):
        path = Path(source_file)
        counts[f"{path.parent.name}/{path.name}.parquet"] += 1
    return counts


def assert_bronze_once(home: Path, landing: Path) -> None:
    """Bronze holds each landing file exactly once: one file under its deterministic name, with as
    many rows as the landing file has records (all of them from it), registered exactly once."""
    store = make_store(home)
    for contract, source in BRONZE_SOURCES:
        wanted = landing_records(landing, source)
        assert wanted, f"no {source} landing files under {landing}"
        bronze = store.bronze(contract)
        files = bronze.files()
        missing, extra = sorted(set(wanted) - set(files)), sorted(set(files) - set(wanted))
        assert not missing and not extra, f"{contract.qualified_name}: Bronze files missing {missing}, unexpected {extra}"
        root = home / "warehouse" / "bronze" / contract.name
        rows = {}
        for name in files:
            table = pq.read_table(root / name, columns=["_source_file"])
            sources = set(table["_source_file"].to_pylist())
            assert sources <= {f"{source}/{name[: -len('.parquet')]}"}, f"{contract.qualified_name}: {name} holds rows of {sorted(sources)}"
            rows[name] = table.num_rows
        wrong = {n: (rows[n], wanted[n]) for n in wanted if rows[n] != wanted[n]}
        assert not wrong, f"{contract.qualified_name}: (rows in Bronze, records landed) differ for {wrong}"
        registered = bronze.registered().to_pylist()
        twice = sorted(n for n, c in collections.Counter(r["file"] for r in registered).items() if c > 1)
        assert not twice, f"{contract.qualified_name}: registered more than once: {twice}"
        counted = {r["file"]: r["records"] for r in registered}
        assert set(counted) == set(wanted), (
            f"{contract.qualified_name}: registry lacks {sorted(set(wanted) - set(counted))}, has extra {sorted(set(counted) - set(wanted))}"
        )
        assert counted == wanted, f"{contract.qualified_name}: the registry's record counts differ from the landing files'"


def temporaries(home: Path) -> list[str]:
    warehouse = home / "warehouse"
    return sorted(str(p.relative_to(warehouse)) for p in warehouse.rglob(".*.tmp") if p.is_file())


def _catalog(home: Path):
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog("lakehouse", uri=f"sqlite:///{home}/catalog.db", warehouse=(home / "warehouse").as_uri())


def table_states(home: Path, namespaces: tuple[str, ...] = ("bronze", "silver", "gold")) -> dict[str, tuple[int | None, dict[str, str]]]:
    """Every Iceberg table of those namespaces (registries and tombstones included): main's
    snapshot id and the table properties."""
    catalog = _catalog(home)
    states = {}
    existing = {ns[0] for ns in catalog.list_namespaces()}
    for namespace in namespaces:
        if namespace not in existing:
            continue
        for identifier in catalog.list_tables(namespace):
            table = catalog.load_table(identifier)
            snapshot = table.current_snapshot()
            states[".".join(identifier)] = (snapshot.snapshot_id if snapshot else None, dict(table.properties))
    return states


def snapshot_ids(home: Path) -> dict[str, int | None]:
    return {name: state[0] for name, state in table_states(home).items()}


def dagster_runs(dagster_home: Path) -> list[tuple[str, str, str]]:
    """(run id, job name, status) of every run in the instance at ``dagster_home``."""
    from dagster import DagsterInstance

    instance = DagsterInstance.from_config(str(dagster_home))
    try:
        return [(r.run_id, r.job_name, r.status.value) for r in instance.get_runs()]
    finally:
        instance.dispose()
