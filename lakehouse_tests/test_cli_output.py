"""What `lakehouse` tells its user: one line per run, step and asset outcome (published, no new
data, refused), quiet Dagster, Spark and Python warnings unless --verbose, one-line errors unless
--debug, and the documented recovery from a refused Silver write.

In process (no JVM unless a test takes the ``spark`` fixture): the outcomes the IO manager records
and how the CLI words them. As processes (each bounded by a timeout): errors, pipes, escapes, the
output of real refreshes (slow: each starts a JVM).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest

from lakehouse.assets import all_assets
from lakehouse.contracts.tables import CUSTOMERS_RAW, ORDERS, ORDERS_RAW, ORDERS_REJECTS
from lakehouse.environment import resources_for
from lakehouse.io.table_store import CommitStamp
from lakehouse.settings import Settings

CLI_TIMEOUT = 120
LOCK_TIMEOUT = 120
REFRESH_TIMEOUT = 600
DAY = "2026-01-01"

VALID = {"lsn": 1, "op": "c", "order_id": "o-1", "customer_id": "c-1", "status": "placed", "amount": 10.5,
         "currency": "EUR", "created_at": "2026-01-01T10:00:00Z", "updated_at": "2026-01-01T10:00:00Z"}


def event(**changes) -> str:
    return json.dumps({**VALID, **changes})


GOOD = [event(order_id=f"o-{i}", lsn=i) for i in range(1, 7)]
BAD = ["{broken", event(lsn=20, amount=-1), event(lsn=21, currency="euro"), event(lsn=22, status="lost")]


def land(home: Path, name: str, lines: list[str], day: str = DAY) -> Path:
    folder = home / "landing" / "orders" / f"dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "lakehouse.cli", *args]


def environment(home: Path, dagster_home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LAKEHOUSE_LANDING", "LAKEHOUSE_ENV", "PYTHONWARNINGS")}
    env.update(LAKEHOUSE_HOME=str(home), DAGSTER_HOME=str(dagster_home), PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def run(args: list[str], env: dict[str, str], cwd: Path, timeout: float = CLI_TIMEOUT, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, **kwargs)


def explain(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout[-5000:]}\n--- stderr ---\n{proc.stderr[-10000:]}"


def materialization(result, contract):
    return next(e for e in result.get_asset_materialization_events() if e.asset_key == contract.asset_key).materialization


def assets(*contracts):
    keys = {c.asset_key for c in contracts}
    return [a for a in all_assets() if keys.intersection(a.keys)]


# ---- the outcome of each write, as the IO manager records it and the CLI words it -------------


def test_outcome_lines_word_each_kind_of_write():
    from lakehouse.cli import asset_outcome

    merge = {"write_mode": "merge", "committed": True, "rows_written": 5, "rows_inserted": 3, "rows_updated": 2, "rows_deleted": 1}
    assert asset_outcome(merge) == "published (3 inserted, 2 updated, 1 deleted)"
    assert asset_outcome({"write_mode": "overwrite", "committed": True, "rows_written": 12}) == "published (12 rows written)"
    assert asset_outcome({"write_mode": "append", "committed": True, "rows_written": 1}) == "published (1 row written)"
    assert asset_outcome({"outcome": "no new data", "committed": False}) == "no new data"
    refused = {"outcome": "refused", "published": False, "committed": False, "blocking_failures": ["unique_id", "reject_rate_limit"],
               "audit_branch": "audit-x"}
    assert asset_outcome(refused) == "refused: blocking check(s) unique_id, reject_rate_limit failed; main unchanged, branch audit-x kept"
    # Materializations recorded before outcomes were: the same words from the other fields.
    assert asset_outcome({"published": False, "committed": False, "blocking_failures": ["u"], "audit_branch": "b"}).startswith("refused:")
    assert asset_outcome({"write_mode": "merge", "committed": False}) == "no new data"


def test_bronze_says_published_then_no_new_data(tmp_path, capsys):
    from lakehouse.cli import report_run

    settings = Settings(home=tmp_path / "lh")
    land(settings.home, "a.jsonl", GOOD)
    bronze = assets(ORDERS_RAW, CUSTOMERS_RAW)
    with dg.DagsterInstance.ephemeral() as instance:
        first = dg.materialize(bronze, partition_key=DAY, resources=resources_for(settings), instance=instance)
        assert materialization(first, ORDERS_RAW).metadata["committed"].value is True
        assert "outcome" not in materialization(first, ORDERS_RAW).metadata or materialization(first, ORDERS_RAW).metadata["outcome"].value == "published"
        second = dg.materialize(bronze, partition_key=DAY, resources=resources_for(settings), instance=instance)
        metadata = materialization(second, ORDERS_RAW).metadata
        assert metadata["outcome"].value == "no new data" and metadata["committed"].value is False
        capsys.readouterr()
        report_run(first, instance)
        report_run(second, instance)
    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(rf"run {first.run_id} \(__ephemeral_asset_job__\) succeeded in \d+\.\d s", out[0]), out
    assert any(re.fullmatch(r"  step bronze__orders_raw succeeded in \d+\.\d s", line) for line in out), out
    assert f"    bronze/orders_raw: published ({len(GOOD)} rows written)" in out
    assert "    bronze/customers_raw: no new data" in out  # no customer file landed
    second_run = out[out.index(next(line for line in out if line.startswith(f"run {second.run_id}"))) :]
    assert "    bronze/orders_raw: no new data" in second_run
    assert not any("materialized" in line or "published" in line for line in second_run), second_run


def test_a_silver_write_with_nothing_new_is_not_reported_as_fresh_passes(tmp_path, capsys):
    """With no new Bronze data Silver writes nothing (no JVM starts): the materialization says so,
    and its checks, evaluated on zero rows, are marked as such rather than shown as fresh passes."""
    from lakehouse.cli import report_run

    settings = Settings(home=tmp_path / "lh")
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(assets(ORDERS), resources=resources_for(settings), instance=instance)
        assert result.success
        metadata = materialization(result, ORDERS).metadata
        assert metadata["outcome"].value == "no new data" and metadata["committed"].value is False
        checks = result.get_asset_check_evaluations()
        assert checks
        for check in checks:
            assert check.metadata["evaluated_rows"].value == 0, check.check_name
            assert check.description.startswith("nothing new was written"), (check.check_name, check.description)
        capsys.readouterr()
        report_run(result, instance)
    assert "    silver/orders: no new data" in capsys.readouterr().out


def test_a_refused_write_says_refused_and_which_checks_and_files(tmp_path, spark, capsys):
    from lakehouse.cli import report_run

    settings = Settings(home=tmp_path / "lh", reject_rate_limit=0.05)
    land(settings.home, "bad.jsonl", GOOD + BAD)
    land(settings.home, "good.jsonl", [event(order_id="o-9", lsn=9), "{also broken"])
    resources = resources_for(settings)
    with dg.DagsterInstance.ephemeral() as instance:
        assert dg.materialize(assets(ORDERS_RAW), partition_key=DAY, resources=resources, instance=instance).success
        result = dg.materialize(assets(ORDERS), resources=resources, instance=instance, raise_on_error=False)
        assert not result.success
        metadata = materialization(result, ORDERS).metadata
        assert metadata["outcome"].value == "refused" and metadata["published"].value is False
        # main did not change: the plotted counts say so; what the refused branch held is kept apart
        assert metadata["rows_inserted"].value == 0 and metadata["records_applied"].value == 0
        assert metadata["audit_rows_inserted"].value == metadata["audit_records_applied"].value == 7
        assert metadata["records_read"].value == 12 and metadata["records_rejected"].value == 5  # what the batch held
        branch = metadata["audit_branch"].value
        check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "reject_rate_limit")
        assert not check.passed
        for part in ("5 of 12 records rejected", "41.67%", "limit of 5%", "LAKEHOUSE_REJECT_RATE_LIMIT=0.05",
                     f"orders/dt={DAY}/bad.jsonl (4), orders/dt={DAY}/good.jsonl (1)"):
            assert part in check.description, (part, check.description)
        assert check.metadata["top_reject_files"].value == [
            {"file": f"orders/dt={DAY}/bad.jsonl", "rejects": 4}, {"file": f"orders/dt={DAY}/good.jsonl", "rejects": 1},
        ]
        capsys.readouterr()
        report_run(result, instance)
    captured = capsys.readouterr()
    assert f"    silver/orders: refused: blocking check(s) reject_rate_limit failed; main unchanged, branch {branch} kept" in captured.err
    assert "published" not in captured.out and "materialized" not in captured.out
    assert re.search(r"  step silver__orders failed in \d+\.\d s", captured.err), captured.err
    assert "check reject_rate_limit on silver/orders failed (1 failing): reject rate within the configured limit: 5 of 12" in captured.err
    assert "Traceback" not in captured.err and "Stack Trace" not in captured.err


def test_a_merge_that_changes_nothing_says_no_new_data(tmp_path, spark):
    """A re-delivered file: Silver reads new Bronze records, but every event is already applied."""
    settings = Settings(home=tmp_path / "lh")
    resources = resources_for(settings)
    land(settings.home, "a.jsonl", GOOD)
    with dg.DagsterInstance.ephemeral() as instance:
        assert dg.materialize(assets(ORDERS_RAW), partition_key=DAY, resources=resources, instance=instance).success
        first = dg.materialize(assets(ORDERS), resources=resources, instance=instance)
        assert materialization(first, ORDERS).metadata["committed"].value is True
        assert "outcome" not in materialization(first, ORDERS).metadata
        land(settings.home, "a-again.jsonl", GOOD)
        assert dg.materialize(assets(ORDERS_RAW), partition_key=DAY, resources=resources, instance=instance).success
        again = dg.materialize(assets(ORDERS), resources=resources, instance=instance)
        metadata = materialization(again, ORDERS).metadata
        assert metadata["records_read"].value == len(GOOD)
        assert metadata["outcome"].value == "no new data" and metadata["committed"].value is False
        checks = {c.check_name: c for c in again.get_asset_check_evaluations()}
        assert checks["unique_order_id"].metadata["evaluated_rows"].value == 0
        assert checks["unique_order_id"].description.startswith("nothing new was written")


# ---- errors, pipes and escapes (processes, no JVM) -------------------------------------------


def test_help_documents_the_exit_codes(tmp_path):
    proc = run(cli("--help"), dict(os.environ), tmp_path)
    assert proc.returncode == 0, explain(proc)
    text = " ".join(proc.stdout.split())
    for code, meaning in (("0", "succeeded"), ("1", "failed"), ("2", "setting"), ("3", "another")):
        assert re.search(rf"\b{code}\s+[^.]*{meaning}", text), (code, proc.stdout)
    assert "--debug" in proc.stdout and "--verbose" in proc.stdout


def test_errors_are_one_line_unless_debug(tmp_path):
    not_a_dir = tmp_path / "home-is-a-file"
    not_a_dir.write_text("oops")
    env = environment(not_a_dir, tmp_path / "dh")
    plain = run(cli("tables"), env, tmp_path)
    assert plain.returncode == 2 and len(plain.stderr.strip().splitlines()) == 1 and "Traceback" not in plain.stderr, explain(plain)
    for args in (("--debug", "tables"), ("tables", "--debug")):
        debug = run(cli(*args), env, tmp_path)
        assert debug.returncode == 2 and "Traceback" in debug.stderr, explain(debug)
        assert debug.stderr.strip().splitlines()[-1] == plain.stderr.strip(), explain(debug)


@pytest.mark.parametrize("args, words", [
    (("land-sample", "--orders-per-day", "1"), "orders-per-day"),
    (("land-sample", "--days", "0"), "days"),
])
def test_bad_land_sample_arguments_are_one_line(tmp_path, args, words):
    proc = run(cli(*args), environment(tmp_path / "lh", tmp_path / "dh"), tmp_path)
    assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr, explain(proc)


def test_a_landing_file_that_differs_from_the_sample_is_one_line(tmp_path):
    env = environment(tmp_path / "lh", tmp_path / "dh")
    assert run(cli("land-sample", "--days", "1", "--orders-per-day", "5"), env, tmp_path).returncode == 0
    landed = next((tmp_path / "lh" / "landing" / "orders").rglob("*.jsonl"))
    landed.write_text("changed\n")
    proc = run(cli("land-sample", "--days", "1", "--orders-per-day", "5"), env, tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, explain(proc)
    assert landed.name in proc.stderr and "Traceback" not in proc.stderr, explain(proc)


def _rejects(home: Path, raws: list[tuple[str, str]]) -> None:
    """Rows in silver/orders_rejects: (source file, raw text)."""
    store = resources_for(Settings(home=home))["store"].get_store()
    now = dt.datetime.now(dt.UTC)
    rows = [
        {"record_id": f"{source}:{n}", "reason": "malformed_json", "_raw": raw, "_line_number": n, "_source_file": source,
         "_ingested_at": now, "_batch_id": "test"}
        for n, (source, raw) in enumerate(raws, start=1)
    ]
    store.write(ORDERS_REJECTS, pa.Table.from_pylist(rows, schema=ORDERS_REJECTS.arrow_schema), CommitStamp("test", "silver/orders_rejects"))


def test_rejects_escapes_control_characters_and_invalid_text(tmp_path):
    home = tmp_path / "lh"
    raw = "\x1b[2J\x1b]0;owned\x07{\"a\": \"\x00\u202e\ufffd\x7f\x9b\"}\r\tend"
    _rejects(home, [("orders/dt=2026-01-01/evil\x1b[31m.jsonl", raw)])
    proc = subprocess.run(cli("rejects"), env=environment(home, tmp_path / "dh"), cwd=tmp_path, capture_output=True, timeout=CLI_TIMEOUT)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    out = proc.stdout.decode("utf-8")
    lines = out.splitlines()
    assert all(ch.isprintable() for line in lines for ch in line), ascii(out)
    shown = next(line for line in lines if "malformed_json" in line)
    for escape in (r"\x1b[2J", r"\x1b]0;owned\x07", r"\x00", r"\u202e", r"\x7f", r"\x9b", r"\r", r"\t", r"evil\x1b[31m.jsonl"):
        assert escape in shown, (escape, shown)
    assert "\ufffd" in shown  # the replacement character of undecodable bytes is text, shown as is


def test_rejects_into_a_closed_pipe_exits_quietly(tmp_path):
    home = tmp_path / "lh"
    _rejects(home, [(f"orders/dt=2026-01-01/f{n % 50}.jsonl", f"line {n}") for n in range(3000)])
    env = environment(home, tmp_path / "dh")
    read, write = os.pipe()
    os.close(read)  # like `| head` once head has gone: every write fails with EPIPE
    try:
        proc = subprocess.run(cli("rejects"), env=env, cwd=tmp_path, stdout=write, stderr=subprocess.PIPE, text=True, timeout=CLI_TIMEOUT)
    finally:
        os.close(write)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    head = subprocess.run(
        ["/bin/sh", "-c", f"{' '.join(cli('rejects'))} | head -n 1"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=CLI_TIMEOUT,
    )
    assert head.stdout.startswith("silver/orders_rejects: 3000 reject(s)") and head.stderr == "", explain(head)


def test_a_locked_catalog_is_one_line_naming_it(tmp_path):
    home = tmp_path / "lh"
    resources_for(Settings(home=home))["store"].get_store().info(ORDERS)  # the catalog exists
    catalog = home / "catalog.db"
    holder = sqlite3.connect(catalog, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # as another process in the middle of a commit
        proc = run(cli("tables"), environment(home, tmp_path / "dh"), tmp_path, timeout=LOCK_TIMEOUT)
    finally:
        holder.close()
    assert proc.returncode == 3, explain(proc)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(catalog) in lines[0] and "another lakehouse process" in lines[0], explain(proc)


# ---- real refreshes: what a user sees (slow: each starts a JVM) ------------------------------

NOISE = (" - DEBUG - ", " - INFO - ", "WARN ", "Setting default log level", "NativeCodeLoader", "UserWarning", "Traceback", "Stack Trace")


@pytest.mark.slow
def test_refresh_output_is_short_unless_verbose(tmp_path):
    home, dagster_home = tmp_path / "lh", tmp_path / "dh"
    env = environment(home, dagster_home)
    env.pop("SPARK_LOCAL_IP", None)  # Spark warns about the loopback address: that is noise too
    assert run(cli("land-sample", "--days", "1", "--orders-per-day", "20"), env, tmp_path).returncode == 0
    quiet = run(cli("refresh"), env, tmp_path, timeout=REFRESH_TIMEOUT)
    assert quiet.returncode == 0, explain(quiet)
    for noise in NOISE:
        assert noise not in quiet.stderr and noise not in quiet.stdout, (noise, explain(quiet))
    assert quiet.stderr.strip().splitlines() == ["lakehouse: starting Spark ..."], explain(quiet)
    out = quiet.stdout.splitlines()
    runs = [line for line in out if line.startswith("run ")]
    assert len(runs) == 2 and all(re.fullmatch(r"run \S+ \((ingest|publish)\) succeeded in \d+\.\d s \(DAGSTER_HOME=.*\)", r) for r in runs), out
    steps = [line for line in out if line.startswith("  step ")]
    assert steps and all(re.fullmatch(r"  step \S+ succeeded in \d+\.\d s", s) for s in steps), out
    assert "    silver/orders: published (" in quiet.stdout and "    gold/daily_sales: published (" in quiet.stdout
    assert len(out) < 40, out

    assert run(cli("land-sample", "--days", "2", "--orders-per-day", "20"), env, tmp_path).returncode == 0
    verbose = run(cli("refresh", "--verbose"), env, tmp_path, timeout=REFRESH_TIMEOUT)
    assert verbose.returncode == 0, explain(verbose)
    assert " - DEBUG - " in verbose.stderr and "STEP_SUCCESS" in verbose.stderr, explain(verbose)
    assert re.search(r" INFO \w+: ", verbose.stderr), explain(verbose)  # Spark's own INFO lines
    assert "run " in verbose.stdout


@pytest.mark.slow
def test_the_documented_recovery_from_a_refused_silver_write(tmp_path):
    """README, "When a refresh fails": moving the landing file away does not help (Bronze holds
    it); raising the limit for one run quarantines the records and moves on."""
    home, dagster_home = tmp_path / "lh", tmp_path / "dh"
    env = environment(home, dagster_home, LAKEHOUSE_REJECT_RATE_LIMIT="0.05")
    bad = land(home, "bad.jsonl", GOOD + BAD)

    refused = run(cli("refresh"), env, tmp_path, timeout=REFRESH_TIMEOUT)
    assert refused.returncode == 1, explain(refused)
    assert re.search(r"silver/orders: refused: blocking check\(s\) reject_rate_limit failed; main unchanged, branch audit-\S+ kept", refused.stderr), explain(refused)
    check = next(line for line in refused.stderr.splitlines() if "check reject_rate_limit on silver/orders failed" in line)
    for part in ("4 of 10 records rejected (40%)", "limit of 5%", "LAKEHOUSE_REJECT_RATE_LIMIT=0.05", f"orders/dt={DAY}/bad.jsonl (4)"):
        assert part in check, (part, check)
    assert "Traceback" not in refused.stderr and "Stack Trace" not in refused.stderr, explain(refused)
    inspected = run(cli("rejects"), env, tmp_path)
    assert "silver/orders_rejects: 0 reject(s)" in inspected.stdout, explain(inspected)  # quarantined only once published

    parked = tmp_path / "parked"
    parked.mkdir()
    shutil.move(bad, parked / bad.name)
    again = run(cli("refresh"), env, tmp_path, timeout=REFRESH_TIMEOUT)
    assert again.returncode == 1 and "silver/orders: refused" in again.stderr, explain(again)  # Bronze already has the file
    shutil.move(parked / bad.name, bad)

    raised = run(cli("refresh"), {**env, "LAKEHOUSE_REJECT_RATE_LIMIT": "0.5"}, tmp_path, timeout=REFRESH_TIMEOUT)
    assert raised.returncode == 0, explain(raised)
    assert "    silver/orders: published (6 inserted, 0 updated, 0 deleted)" in raised.stdout, explain(raised)
    assert "    silver/orders_rejects: published (4 inserted" in raised.stdout, explain(raised)
    inspected = run(cli("rejects"), env, tmp_path)
    assert "silver/orders_rejects: 4 reject(s)" in inspected.stdout and "negative_amount" in inspected.stdout, explain(inspected)

    settled = run(cli("refresh"), env, tmp_path, timeout=REFRESH_TIMEOUT)
    assert settled.returncode == 0 and settled.stdout.strip() == "nothing to do", explain(settled)
