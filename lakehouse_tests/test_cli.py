"""The `lakehouse` CLI for real: land sample data, refresh through Dagster in a subprocess, read back.

One land + refresh cycle per table store (each refresh starts a JVM): the default Arrow store, and
``LAKEHOUSE_STORE=spark`` (Silver merges and Gold overwrites in Spark SQL on Iceberg's Spark
runtime; skipped without the jars in ``.jars``). The tables it leaves are read back with pyiceberg
and, independently, with DuckDB straight from the Parquet files, and both are compared with the
plain-Python oracle in `reference.py`. The run must also be recorded in the Dagster instance at
DAGSTER_HOME and stamped into the Iceberg snapshots.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog

from lakehouse.contracts import ALL_TABLES
from lakehouse_tests.conftest import ICEBERG_JARS
from lakehouse_tests.reference import Expected, expected_dbt_models, expected_state, iter_records

LAND_TIMEOUT = 120
REFRESH_TIMEOUT = 600
TABLES_TIMEOUT = 120

SILVER_GOLD = (
    "silver.orders",
    "silver.orders_rejects",
    "silver.customers",
    "silver.customers_rejects",
    "gold.daily_sales",
    "gold.customer_summary",
)


def _cli() -> list[str]:
    """The `lakehouse` console script of this venv, else `python -m lakehouse.cli`."""
    script = Path(sys.executable).parent / "lakehouse"
    return [str(script)] if script.exists() else [sys.executable, "-m", "lakehouse.cli"]


def _env(lakehouse_home: Path, dagster_home: Path, store: str | None = None) -> dict[str, str]:
    """This process's environment for a local lakehouse at ``lakehouse_home``; ``store`` sets
    LAKEHOUSE_STORE (else the environment's, if any, holds)."""
    env = dict(os.environ)
    env["LAKEHOUSE_HOME"] = str(lakehouse_home)
    env["DAGSTER_HOME"] = str(dagster_home)
    env.pop("LAKEHOUSE_LANDING", None)
    env.pop("LAKEHOUSE_ENV", None)
    if store is not None:
        env["LAKEHOUSE_STORE"] = store
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _explain(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout[-5000:]}\n--- stderr ---\n{proc.stderr[-10000:]}"


@dataclass
class Cycle:
    store: str  # LAKEHOUSE_STORE of the refresh
    home: Path
    dagster_home: Path
    landing: Path
    env: dict[str, str]
    cwd: Path
    refresh_stdout: str
    expected: Expected

    def catalog(self) -> SqlCatalog:
        return SqlCatalog(
            "lakehouse", uri=f"sqlite:///{self.home / 'catalog.db'}", warehouse=(self.home / "warehouse").as_uri()
        )


@pytest.fixture(scope="module", params=["arrow", "spark"])
def cycle(request, tmp_path_factory) -> Cycle:
    store = request.param
    if store == "spark" and not ICEBERG_JARS:
        pytest.skip("the Iceberg Spark runtime is not in .jars: fetch it with `mvn -q -B -f jars/pom.xml dependency:copy-dependencies`")
    base = tmp_path_factory.mktemp(f"cli-{store}")
    home, dagster_home, cwd = base / "lakehouse", base / "dagster_home", base / "cwd"
    dagster_home.mkdir()
    cwd.mkdir()
    env = _env(home, dagster_home, store)

    land = _run([*_cli(), "land-sample", "--seed", "3", "--days", "2", "--orders-per-day", "20"], env, cwd, LAND_TIMEOUT)
    assert land.returncode == 0, _explain(land)
    landing = home / "landing"
    assert (landing / "orders").is_dir() and (landing / "customers").is_dir(), _explain(land)

    refresh = _run([sys.executable, "-m", "lakehouse.cli", "refresh"], env, cwd, REFRESH_TIMEOUT)
    assert refresh.returncode == 0, _explain(refresh)
    return Cycle(store, home, dagster_home, landing, env, cwd, refresh.stdout, expected_state(landing))


# ---- reading the tables back ---------------------------------------------------------------


def _iceberg_rows(cycle: Cycle, name: str) -> list[dict]:
    return cycle.catalog().load_table(name).scan().to_arrow().to_pylist()


def _data_file_paths(cycle: Cycle, name: str) -> list[str]:
    """Local paths of the Iceberg table's current data files (no delete files may apply)."""
    table = cycle.catalog().load_table(name)
    tasks = list(table.scan().plan_files())
    assert all(not task.delete_files for task in tasks), f"{name} has delete files; read_parquet would be wrong"
    files = table.inspect.files().to_pylist()
    assert all(f["content"] == 0 for f in files), f"{name} has non-data files in its current snapshot"
    planned = sorted(task.file.file_path for task in tasks)
    assert planned == sorted(f["file_path"] for f in files)
    return [re.sub(r"^file://", "", p) for p in planned]


def _duckdb_query(sql: str, params: list | None = None) -> list[dict]:
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        # Through Arrow, so timestamps come back as UTC-aware datetimes and decimals as Decimal
        # exactly as pyiceberg gives them (and no pytz is needed).
        arrow = con.sql(sql, params=params).to_arrow_table()
        assert isinstance(arrow, pa.Table)
        return arrow.to_pylist()
    finally:
        con.close()


def _duckdb_rows(cycle: Cycle, name: str) -> list[dict]:
    paths = _data_file_paths(cycle, name)
    if not paths:
        return []
    return _duckdb_query("SELECT * FROM read_parquet(?)", [paths])


READERS = {"pyiceberg": _iceberg_rows, "duckdb": _duckdb_rows}


def _utc(value: dt.datetime) -> dt.datetime:
    assert value.tzinfo is not None, f"{value!r} is not timezone-aware"
    return value.astimezone(dt.UTC)


def _money(value) -> Decimal:
    assert isinstance(value, Decimal), f"{value!r} is not a Decimal"
    assert value.as_tuple().exponent == -2, f"{value!r} does not have 2 decimal places"
    return value


def _by_key(rows: list[dict], key) -> dict:
    keyed = {key(r): r for r in rows}
    assert len(keyed) == len(rows), "duplicate keys"
    return keyed


# ---- table contents against the oracle -----------------------------------------------------


@pytest.mark.parametrize("reader", sorted(READERS))
def test_silver_orders(cycle: Cycle, reader: str):
    rows = _by_key(READERS[reader](cycle, "silver.orders"), lambda r: r["order_id"])
    expected = cycle.expected.orders
    assert expected, "the sample should produce live orders"
    assert set(rows) == set(expected)
    got = {k: (r["status"], _money(r["amount"]), r["lsn"]) for k, r in rows.items()}
    want = {k: (e["status"], e["amount"], e["lsn"]) for k, e in expected.items()}
    assert got == want
    full = {
        k: (r["customer_id"], r["currency"], _utc(r["created_at"]), _utc(r["updated_at"])) for k, r in rows.items()
    }
    assert full == {k: (e["customer_id"], e["currency"], e["created_at"], e["updated_at"]) for k, e in expected.items()}
    for r in rows.values():
        assert r["_source_file"].startswith("orders/dt=")
        assert r["_batch_id"]


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("table, source", [("silver.orders_rejects", "orders"), ("silver.customers_rejects", "customers")])
def test_rejects(cycle: Cycle, reader: str, table: str, source: str):
    rows = READERS[reader](cycle, table)
    expected = cycle.expected.order_rejects if source == "orders" else cycle.expected.customer_rejects
    assert expected, f"the sample should produce {source} rejects"
    got = [(r["_source_file"], r["_line_number"], r["reason"]) for r in rows]
    assert len(got) == len(set(got)), "a record is rejected twice"
    assert set(got) == expected
    texts = {(f, n): text for f, n, text, _ in iter_records(cycle.landing, source)}
    for r in rows:
        assert r["record_id"] == f"{r['_source_file']}:{r['_line_number']}"
        assert r["_raw"] == texts[(r["_source_file"], r["_line_number"])]


@pytest.mark.parametrize("reader", sorted(READERS))
def test_silver_customers(cycle: Cycle, reader: str):
    rows = _by_key(READERS[reader](cycle, "silver.customers"), lambda r: r["customer_id"])
    expected = cycle.expected.customers
    assert expected
    got = {k: (r["name"], r["email"], r["country"], _utc(r["updated_at"])) for k, r in rows.items()}
    assert got == {k: (e["name"], e["email"], e["country"], e["updated_at"]) for k, e in expected.items()}


@pytest.mark.parametrize("reader", sorted(READERS))
def test_gold_daily_sales(cycle: Cycle, reader: str):
    rows = _by_key(READERS[reader](cycle, "gold.daily_sales"), lambda r: (r["report_date"], r["currency"]))
    expected = cycle.expected.daily_sales
    assert expected
    got = {k: (r["total_orders"], _money(r["total_revenue"]), r["unique_customers"]) for k, r in rows.items()}
    want = {k: (e["total_orders"], e["total_revenue"], e["unique_customers"]) for k, e in expected.items()}
    assert got == want


@pytest.mark.parametrize("reader", sorted(READERS))
def test_gold_customer_summary(cycle: Cycle, reader: str):
    rows = _by_key(READERS[reader](cycle, "gold.customer_summary"), lambda r: r["customer_id"])
    expected = cycle.expected.customer_summary
    assert expected
    columns = ("name", "email", "country", "order_count")
    got = {k: (*(r[c] for c in columns), _money(r["total_revenue"])) for k, r in rows.items()}
    want = {k: (*(e[c] for c in columns), e["total_revenue"]) for k, e in expected.items()}
    assert got == want


@pytest.mark.parametrize("source", ["orders", "customers"])
def test_bronze_with_duckdb(cycle: Cycle, source: str):
    root = cycle.home / "warehouse" / "bronze" / f"{source}_raw"
    assert root.is_dir()
    assert not [p for p in root.rglob(".*")], "temp files left behind in Bronze"
    rows = _duckdb_query(
        f"SELECT _source_file, _line_number, _raw, CAST(dt AS VARCHAR) AS dt "
        f"FROM read_parquet('{root}/**/*.parquet', hive_partitioning = true)"
    )
    assert len(rows) == cycle.expected.bronze_counts[source]
    records = {(f, n): text for f, n, text, _ in iter_records(cycle.landing, source)}
    got = {(r["_source_file"], r["_line_number"]): r["_raw"] for r in rows}
    assert len(got) == len(rows), "a landing record is in Bronze twice"
    assert got == records
    for r in rows:  # the Hive partition is the landing day of the record's file
        assert r["_source_file"].split("/")[1] == f"dt={r['dt']}"


def test_bronze_with_pyarrow_matches_counts(cycle: Cycle):
    import pyarrow.dataset as ds

    for source in ("orders", "customers"):
        root = cycle.home / "warehouse" / "bronze" / f"{source}_raw"
        dataset = ds.dataset(root, format="parquet", partitioning="hive", ignore_prefixes=[".", "_"])
        assert dataset.count_rows() == cycle.expected.bronze_counts[source]


# ---- the Dagster run and its stamps -------------------------------------------------------


def _refresh_run(cycle: Cycle):
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    instance = DagsterInstance.from_config(str(cycle.dagster_home))
    runs = instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.SUCCESS]))
    return instance, sorted(runs, key=lambda r: r.job_name)  # ingest, then publish


def test_refresh_run_recorded_in_dagster_instance(cycle: Cycle):
    from dagster import AssetKey

    instance, runs = _refresh_run(cycle)
    try:
        assert [r.job_name for r in runs] == ["ingest", "publish"], f"unexpected runs {[(r.job_name, r.run_id) for r in runs]}"
        by_layer = {"bronze": runs[0], "silver": runs[0], "gold": runs[1]}
        for run in runs:
            assert run.tags.get("lakehouse/trigger") == "cli"
            assert f"run {run.run_id} ({run.job_name}) succeeded" in cycle.refresh_stdout
        run = runs[0]

        for contract in ALL_TABLES:
            event = instance.get_latest_materialization_event(contract.asset_key)
            assert event is not None, f"{contract.asset_key.to_user_string()} was never materialized"
            assert event.run_id == by_layer[contract.layer.value].run_id
            assert f"    {contract.asset_key.to_user_string()}: published (" in cycle.refresh_stdout

        event = instance.get_latest_materialization_event(AssetKey(["silver", "orders"]))
        metadata = event.asset_materialization.metadata
        assert metadata["dagster/row_count"].value == len(cycle.expected.orders)
        table = cycle.catalog().load_table("silver.orders")
        snapshot = table.current_snapshot()
        assert snapshot is not None
        assert metadata["snapshot_id"].value == str(snapshot.snapshot_id)

        summary = snapshot.summary.additional_properties
        assert summary.get("dagster.run-id") == run.run_id
        assert summary.get("dagster.asset-key") == "silver/orders"
        assert summary.get("dagster.code-version"), f"no code version in snapshot summary {summary}"
    finally:
        instance.dispose()


def test_refresh_says_what_each_run_step_and_write_did(cycle: Cycle):
    lines = cycle.refresh_stdout.splitlines()
    runs = [line for line in lines if line.startswith("run ")]
    assert [re.match(r"run \S+ \((\w+)\) succeeded in \d+\.\d s \(DAGSTER_HOME=", line).group(1) for line in runs] == ["ingest", "publish"], lines
    steps = [line for line in lines if line.startswith("  step ")]
    assert steps and all(re.fullmatch(r"  step \w+ succeeded in \d+\.\d s", line) for line in steps), lines
    assert "  step silver__orders succeeded in " in cycle.refresh_stdout
    assert not [line for line in lines if "materialized" in line or "no new data" in line or "refused" in line], lines
    merge = next(line for line in lines if line.startswith("    silver/orders: "))
    assert re.fullmatch(r"    silver/orders: published \(\d+ inserted, \d+ updated, \d+ deleted\)", merge), merge
    assert re.search(r"^    gold/daily_sales: published \(\d+ rows written\)$", cycle.refresh_stdout, re.M), lines


def test_snapshots_carry_the_assets_code_versions(cycle: Cycle):
    from lakehouse.definitions import build_definitions
    from lakehouse.settings import Settings

    instance, runs = _refresh_run(cycle)
    instance.dispose()
    run_ids = {"silver": runs[0].run_id, "gold": runs[1].run_id}
    specs = {s.key.to_user_string(): s for s in build_definitions(Settings(home=cycle.home)).resolve_all_asset_specs()}
    catalog = cycle.catalog()
    for name in SILVER_GOLD:
        snapshot = catalog.load_table(name).current_snapshot()
        assert snapshot is not None, f"{name} has no snapshot"
        summary = snapshot.summary.additional_properties
        key = name.replace(".", "/")
        assert summary.get("dagster.run-id") == run_ids[name.split(".")[0]], name
        assert summary.get("dagster.code-version") == specs[key].code_version, name


def test_silver_and_gold_are_written_by_the_store_chosen(cycle: Cycle):
    """With LAKEHOUSE_STORE=spark every Silver and Gold snapshot is a Spark commit (Iceberg's Spark
    writes record their application id), with the default store none is."""
    catalog = cycle.catalog()
    for name in SILVER_GOLD:
        summary = catalog.load_table(name).current_snapshot().summary.additional_properties
        assert ("spark.app.id" in summary) == (cycle.store == "spark"), (name, summary)


# ---- `lakehouse tables` ---------------------------------------------------------------------


def test_tables_lists_every_table_with_row_counts(cycle: Cycle):
    proc = _run([*_cli(), "tables"], cycle.env, cycle.cwd, TABLES_TIMEOUT)
    assert proc.returncode == 0, _explain(proc)
    lines = [line.split() for line in proc.stdout.strip().splitlines()]
    assert lines[0][:4] == ["table", "layer", "mode", "rows"]
    listed = {cells[0]: cells for cells in lines[1:]}
    expected = cycle.expected
    want_rows = {
        "bronze/orders_raw": expected.bronze_counts["orders"],
        "bronze/customers_raw": expected.bronze_counts["customers"],
        "silver/orders": len(expected.orders),
        "silver/orders_rejects": len(expected.order_rejects),
        "silver/customers": len(expected.customers),
        "silver/customers_rejects": len(expected.customer_rejects),
        "gold/daily_sales": len(expected.daily_sales),
        "gold/customer_summary": len(expected.customer_summary),
        # the dbt project's models
        **{f"gold/{model}": len(rows) for model, rows in expected_dbt_models(expected).items()},
    }
    assert sorted(listed) == sorted(want_rows), proc.stdout
    assert len(lines) == 1 + 8 + 3
    assert {key: int(cells[3]) for key, cells in listed.items()} == want_rows
    for contract in ALL_TABLES:
        cells = listed[contract.asset_key.to_user_string()]
        assert cells[1] == contract.layer.value and cells[2] == contract.mode.value
    snapshot = cycle.catalog().load_table("silver.orders").current_snapshot()
    assert listed["silver/orders"][4] == str(snapshot.snapshot_id)


# ---- settings errors ----------------------------------------------------------------------


@pytest.mark.parametrize("command", [["tables"], ["land-sample"], ["refresh"]])
def test_lakehouse_home_is_a_file(tmp_path, command):
    not_a_dir = tmp_path / "home-is-a-file"
    not_a_dir.write_text("oops")
    dagster_home = tmp_path / "dh"
    dagster_home.mkdir()
    proc = _run(
        [sys.executable, "-m", "lakehouse.cli", *command], _env(not_a_dir, dagster_home), tmp_path, TABLES_TIMEOUT
    )
    assert proc.returncode != 0, _explain(proc)
    assert "LAKEHOUSE_HOME" in proc.stderr, _explain(proc)
    assert "Traceback" not in proc.stderr, _explain(proc)
    assert not_a_dir.read_text() == "oops"


# ---- one refresh at a time; a killed refresh frees its runs --------------------------------


def _store(home: Path):
    from lakehouse.environment import resources_for
    from lakehouse.settings import Settings

    return resources_for(Settings(home=home))["store"].get_store()


def _land(env: dict[str, str], cwd: Path) -> None:
    land = _run([*_cli(), "land-sample", "--days", "2", "--orders-per-day", "50"], env, cwd, LAND_TIMEOUT)
    assert land.returncode == 0, _explain(land)


@pytest.mark.slow
def test_two_refreshes_on_a_new_home_run_one_after_the_other(tmp_path):
    from lakehouse_tests.compare import assert_matches

    home, dagster_home = tmp_path / "lakehouse", tmp_path / "new_dagster_home"  # neither exists yet
    env = _env(home, dagster_home)
    _land(env, tmp_path)
    refresh = [sys.executable, "-m", "lakehouse.cli", "refresh"]
    procs = [subprocess.Popen(refresh, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=REFRESH_TIMEOUT) for p in procs]
    done = [subprocess.CompletedProcess(p.args, p.returncode, out, err) for p, (out, err) in zip(procs, outputs)]
    for proc in done:
        assert proc.returncode == 0, _explain(proc)
        for problem in ("Traceback", "CommitFailedException", "already exists"):
            assert problem not in proc.stderr, _explain(proc)
    waited = [(proc, other) for proc, other in ((done[0], procs[1]), (done[1], procs[0])) if "waiting for the refresh" in proc.stderr]
    assert len(waited) == 1, "exactly one refresh should have waited for the other"
    proc, other = waited[0]
    assert f"waiting for the refresh running as pid {other.pid} since " in proc.stderr, _explain(proc)
    assert_matches(_store(home), expected_state(home / "landing"))


def test_a_refresh_gives_up_with_exit_3_while_another_holds_the_lock(tmp_path):
    from lakehouse.automation.lock import refresh_lock

    home, dagster_home = tmp_path / "lakehouse", tmp_path / "dh"
    env = _env(home, dagster_home)
    with refresh_lock(home, wait=0, on_wait=print):
        for wait in ("0", "1"):
            started = time.monotonic()
            proc = _run([sys.executable, "-m", "lakehouse.cli", "refresh", "--wait", wait], env, tmp_path, TABLES_TIMEOUT)
            assert proc.returncode == 3, _explain(proc)
            assert time.monotonic() - started >= float(wait)
            assert "Traceback" not in proc.stderr, _explain(proc)
            last = proc.stderr.strip().splitlines()[-1]
            assert last.startswith("lakehouse: ") and f"pid {os.getpid()}" in last and "--wait" in last, _explain(proc)
            assert len(proc.stderr.strip().splitlines()) == (1 if wait == "0" else 2), _explain(proc)
    # The lock is taken before the Dagster instance is opened: the deferred refreshes never touched it.
    assert not dagster_home.exists()


def test_refresh_wait_is_documented_and_checked(tmp_path):
    help_text = _run([sys.executable, "-m", "lakehouse.cli", "refresh", "--help"], dict(os.environ), tmp_path, TABLES_TIMEOUT)
    assert help_text.returncode == 0 and "--wait" in help_text.stdout and "default" in help_text.stdout, _explain(help_text)
    bad = _run([sys.executable, "-m", "lakehouse.cli", "refresh", "--wait", "-1"], dict(os.environ), tmp_path, TABLES_TIMEOUT)
    assert bad.returncode == 2 and "--wait" in bad.stderr and "Traceback" not in bad.stderr, _explain(bad)


@pytest.mark.slow
def test_a_killed_refresh_does_not_leave_its_run_started(tmp_path):
    import shutil
    import signal

    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    from lakehouse_tests.compare import assert_matches

    home, dagster_home = tmp_path / "lakehouse", tmp_path / "dh"
    env = _env(home, dagster_home)
    _land(env, tmp_path)
    dagster_home.mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "lakehouse" / "dagster_instance.yaml", dagster_home / "dagster.yaml")
    instance = DagsterInstance.from_config(str(dagster_home))  # created here, so the refresh only opens it
    try:
        log = tmp_path / "killed-refresh.log"
        first = subprocess.Popen(
            [sys.executable, "-m", "lakehouse.cli", "refresh"], env=env, cwd=tmp_path, stdout=log.open("w"),
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + REFRESH_TIMEOUT
        started = []
        while not started and first.poll() is None and time.monotonic() < deadline:
            started = instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTED]))
            time.sleep(0.2)
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)  # kill -9, its JVM included
            first.wait(timeout=30)
        assert len(started) == 1, f"the refresh never started a run (exit {first.returncode}):\n{log.read_text()[-5000:]}"
        killed = started[0]
        assert instance.get_run_by_id(killed.run_id).status == DagsterRunStatus.STARTED

        again = _run([sys.executable, "-m", "lakehouse.cli", "refresh"], env, tmp_path, REFRESH_TIMEOUT)
        assert again.returncode == 0, _explain(again)
        reaped = [line for line in again.stderr.splitlines() if killed.run_id in line]
        assert len(reaped) == 1 and f"pid {first.pid}" in reaped[0], _explain(again)
        assert instance.get_run_by_id(killed.run_id).status == DagsterRunStatus.FAILURE
        active = instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]))
        assert not active, f"runs still active: {[r.run_id for r in active]}"
        assert_matches(_store(home), expected_state(home / "landing"))
    finally:
        instance.dispose()


def test_maintain_dry_run_names_every_silver_and_gold_table_and_changes_nothing(cycle: Cycle):
    catalog = cycle.catalog()
    before = {t: catalog.load_table(t).metadata_location for t in SILVER_GOLD}
    proc = _run([*_cli(), "maintain", "--dry-run"], cycle.env, cycle.cwd, LAND_TIMEOUT)
    assert proc.returncode == 0, _explain(proc)
    for table in SILVER_GOLD:
        assert f"\n{table}: " in "\n" + proc.stdout, _explain(proc)
    assert proc.stdout.rstrip().endswith("dry run: nothing was changed")
    assert {t: catalog.load_table(t).metadata_location for t in SILVER_GOLD} == before


def test_maintain_compacts_a_table_of_small_merges_and_keeps_its_rows(tmp_path):
    from lakehouse.contracts.tables import ORDERS
    from lakehouse.io.table_store import CommitStamp
    from lakehouse_tests.io.cdc import batch, event, state

    home = tmp_path / "lakehouse"
    store = _store(home)
    for i in range(12):  # twelve one-row merges: twelve small files
        store.merge(ORDERS, batch(event(f"o-{i:02d}", i + 1)), CommitStamp(run_id=f"r{i}", asset_key="silver/orders"))
    rows = state(store.read(ORDERS))
    files = len(list(store.load_table(ORDERS).scan().plan_files()))
    proc = _run([*_cli(), "maintain", "--table", "silver/orders"], _env(home, tmp_path / "dagster_home"), tmp_path, LAND_TIMEOUT)
    assert proc.returncode == 0, _explain(proc)
    assert f"silver.orders: compacted {files} small files into 1" in proc.stdout, _explain(proc)
    assert "gold." not in proc.stdout  # --table: that table alone
    assert state(store.read(ORDERS)) == rows
    assert len(list(store.load_table(ORDERS).scan().plan_files())) == 1
    unknown = _run([*_cli(), "maintain", "--table", "silver/order"], _env(home, tmp_path / "dagster_home"), tmp_path, LAND_TIMEOUT)
    assert unknown.returncode == 2 and "--table silver/order: no such Silver or Gold table; choose one of silver/orders" in unknown.stderr
