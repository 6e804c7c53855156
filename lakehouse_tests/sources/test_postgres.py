"""The PostgreSQL source against a real server (initdb/pg_ctl on 127.0.0.1): initial load in
bounded batches, updates, late commits inside the overlap, nothing read twice, deletes from the key
snapshot (each on every table store: Arrow and Spark, local and Glue catalog), a crash between read
and commit, connection errors that name the setting to fix, and the whole flow to Gold."""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from lakehouse.assets import PAYMENTS_SOURCE
from lakehouse.assets.bronze_database import extract
from lakehouse.contracts.tables import ORDER_REVENUE, ORDERS, PAYMENTS, PAYMENTS_RAW, PAYMENTS_REJECTS
from lakehouse.io.table_store import CommitStamp
from lakehouse.sources.postgres import PostgresSourceResource, SourceError, SourceSettingError
from lakehouse_tests.conftest import make_store
from lakehouse_tests.postgres_server import free_port
from lakehouse_tests.processes import environment, with_fault

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
LOG = logging.getLogger("test")
ROOT = Path(__file__).resolve().parents[2]
_counter = iter(range(10_000))


@pytest.fixture
def database(postgres):
    """A fresh database with an empty payments table; yields (server, database name, run SQL)."""
    name = f"shop{next(_counter)}"
    postgres.create_database(name)
    connection = postgres.connect(name)
    connection.autocommit = True

    def sql(statement: str, *params):
        with connection.cursor() as cursor:
            cursor.execute(statement, params or None)

    sql("CREATE TABLE public.payments (payment_id text PRIMARY KEY, order_id text, amount numeric(18,2), currency text, "
        "status text, updated_at timestamptz)")
    yield postgres, name, sql
    connection.close()


def insert(sql, payment_id: str, at: dt.datetime, order_id="o1", amount="10.00", currency="EUR", status="captured") -> None:
    sql("INSERT INTO payments VALUES (%s, %s, %s, %s, %s, %s)", payment_id, order_id, amount, currency, status, at)


def source_for(server, name: str, **overrides) -> PostgresSourceResource:
    config = dict(host=server.host, port=server.port, database=name, user=server.username, password=server.password,
                  sslmode="require", key_snapshot_hours=None)
    return PostgresSourceResource(**{**config, **overrides})


def run_extract(store, source: PostgresSourceResource, run_id: str = "run", now: dt.datetime | None = None):
    with source.connect() as reader:
        return extract(PAYMENTS_SOURCE, PAYMENTS_RAW, PAYMENTS, reader, store, source, CommitStamp(run_id, "bronze/payments_raw"), LOG, now=now)


def bronze_rows(store) -> list[tuple]:
    rows = store.read(PAYMENTS_RAW)
    return sorted(zip(rows["payment_id"].to_pylist(), rows["updated_at"].to_pylist(), rows["_deleted"].to_pylist()))


def watermark(store) -> dict:
    return store.extract_position(PAYMENTS_RAW).watermark


def test_initial_load_is_appended_in_bounded_batches_with_its_watermark(database, table_store):
    server, name, sql = database
    for i in range(7):
        insert(sql, f"p{i}", T0 + dt.timedelta(minutes=i), amount=f"{i}.25")
    store = table_store

    report = run_extract(store, source_for(server, name, batch_rows=3))

    assert report.rows_appended == 7 and len(report.batches) == 3  # pages of 3, 3 and 1 rows
    assert [p for p, _, _ in bronze_rows(store)] == [f"p{i}" for i in range(7)]
    rows = store.read(PAYMENTS_RAW).to_pylist()
    assert {r["payment_id"]: r["amount"] for r in rows}["p3"] == Decimal("3.25")  # numeric exactly, not a float
    assert {r["_source_file"] for r in rows} == {f"payments/dt={dt.datetime.now(dt.UTC).date().isoformat()}/payments-{n:010d}" for n in (1, 2, 3)}
    mark = watermark(store)
    assert dt.datetime.fromisoformat(mark["value"]) == T0 + dt.timedelta(minutes=6) and mark["key"] == "p6"
    registered = store.bronze(PAYMENTS_RAW).registered()
    assert sorted(registered["records"].to_pylist()) == [1, 3, 3]
    assert store.pending_bronze(PAYMENTS_RAW, 0).records == 7  # what Silver will apply


def test_updates_and_late_commits_inside_the_overlap_are_read_and_nothing_twice(database, table_store):
    server, name, sql = database
    for i in range(4):
        insert(sql, f"p{i}", T0 + dt.timedelta(minutes=i))
    store = table_store
    source = source_for(server, name, overlap_seconds=600)
    run_extract(store, source)
    before = bronze_rows(store)

    again = run_extract(store, source)  # nothing changed: the overlap's rows are in Bronze already
    assert again.rows_appended == 0 and again.batches == [] and again.rows_already_in_bronze > 0
    assert bronze_rows(store) == before

    late = T0 + dt.timedelta(minutes=3) - dt.timedelta(minutes=5)  # older than the watermark, inside the 10-minute overlap
    insert(sql, "late", late)
    sql("UPDATE payments SET status = 'refunded', updated_at = %s WHERE payment_id = 'p1'", T0 + dt.timedelta(minutes=30))
    report = run_extract(store, source)

    assert report.rows_appended == 2 and report.rows_without_watermark == 0
    assert sorted(set(bronze_rows(store)) - set(before)) == [("late", late, False), ("p1", T0 + dt.timedelta(minutes=30), False)]
    assert len(bronze_rows(store)) == len(set(bronze_rows(store)))  # no (key, watermark) twice


def test_a_key_snapshot_turns_vanished_rows_into_delete_events(database, table_store):
    server, name, sql = database
    for i in range(3):
        insert(sql, f"p{i}", T0 + dt.timedelta(minutes=i))
    store = table_store
    source = source_for(server, name, key_snapshot_hours=1)
    first = run_extract(store, source, now=T0)
    assert first.key_snapshot and first.delete_events == 0  # Silver holds nothing yet: nothing to delete
    silver = store.read(PAYMENTS_RAW).drop_columns(["_deleted", "_line_number", "dt"])
    store.write(PAYMENTS, silver, CommitStamp("merge", "silver/payments"))  # what Silver's merge makes of it

    sql("DELETE FROM payments WHERE payment_id = 'p1'")
    soon = run_extract(store, source, now=T0 + dt.timedelta(minutes=30))
    assert not soon.key_snapshot  # the last snapshot is younger than key_snapshot_hours

    later = run_extract(store, source, now=T0 + dt.timedelta(hours=2))
    assert later.key_snapshot and later.delete_events == 1
    deletes = [r for r in store.read(PAYMENTS_RAW).to_pylist() if r["_deleted"]]
    assert [r["payment_id"] for r in deletes] == ["p1"]
    assert deletes[0]["updated_at"] > T0 + dt.timedelta(minutes=2)  # after the row's last change: it wins the merge


@pytest.mark.slow
@pytest.mark.parametrize("point", ["extract.before_claim", "extract.before_register"])
def test_an_extract_killed_between_read_and_commit_loses_nothing_and_duplicates_nothing(database, tmp_path, point):
    server, name, sql = database
    for i in range(5):
        insert(sql, f"p{i}", T0 + dt.timedelta(minutes=i))
    home = tmp_path / "home"
    env = environment(home, tmp_path / "dagster_home", LAKEHOUSE_POSTGRES_HOST=server.host, LAKEHOUSE_POSTGRES_PORT=str(server.port),
                      LAKEHOUSE_POSTGRES_DATABASE=name, LAKEHOUSE_POSTGRES_USER=server.username,
                      LAKEHOUSE_POSTGRES_PASSWORD=server.password, LAKEHOUSE_POSTGRES_BATCH_ROWS="2")
    killed = subprocess.run([sys.executable, "-m", "lakehouse_tests.sources.extract_process", str(home), "killed"],
                            env=with_fault(env, f"kill:{point}@bronze/payments_raw"), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, f"the extract should have died at {point}:\n{killed.stdout}\n{killed.stderr}"
    store = make_store(home)
    # Nothing registered, so Silver sees nothing; the batch's file is visible when the crash came after it appeared
    # (the next extract registers that very file).
    assert store.pending_bronze(PAYMENTS_RAW, 0).files == []
    assert store.read(PAYMENTS_RAW).num_rows == (2 if point == "extract.before_register" else 0)

    insert(sql, "p9", T0 + dt.timedelta(hours=1))  # a change between the crash and the next extract
    report = run_extract(store, source_for(server, name, batch_rows=2), run_id="again")

    rows = bronze_rows(store)
    assert [p for p, _, _ in rows] == ["p0", "p1", "p2", "p3", "p4", "p9"]  # each once
    registered = store.bronze(PAYMENTS_RAW).registered()
    assert sum(registered["records"].to_pylist()) == len(rows) == report.rows_appended
    assert len(set(registered["file"].to_pylist())) == registered.num_rows


def test_rows_without_a_watermark_are_counted_not_silently_skipped(database, tmp_path, caplog):
    server, name, sql = database
    insert(sql, "p1", T0)
    sql("INSERT INTO payments (payment_id, order_id, amount, currency, status) VALUES ('p2', 'o1', 1, 'EUR', 'captured')")
    with caplog.at_level(logging.WARNING):
        report = run_extract(make_store(tmp_path / "home"), source_for(server, name))
    assert report.rows_appended == 1 and report.rows_without_watermark == 1
    assert "1 row(s) have no updated_at" in caplog.text


def test_a_refused_connection_names_the_host_and_port_settings(database):
    server, name, _ = database
    source = source_for(server, name, port=free_port())
    with pytest.raises(SourceError, match="LAKEHOUSE_POSTGRES_HOST and LAKEHOUSE_POSTGRES_PORT") as caught:
        with source.connect():
            pass
    assert not isinstance(caught.value, SourceSettingError)  # a server restarting is worth a retry


def test_a_bad_password_names_the_password_setting_and_never_shows_it(database):
    server, name, _ = database
    wrong = "not-the-password-4711"
    with pytest.raises(SourceSettingError, match="LAKEHOUSE_POSTGRES_PASSWORD") as caught:
        with source_for(server, name, password=wrong).connect():
            pass
    assert wrong not in str(caught.value) and server.password not in str(caught.value)
    with pytest.raises(SourceSettingError, match="no password; set LAKEHOUSE_POSTGRES_PASSWORD"):
        with source_for(server, name, password=None).connect():
            pass


def test_a_source_table_of_other_types_fails_naming_the_column(database, tmp_path):
    server, name, sql = database
    sql("ALTER TABLE payments ALTER COLUMN amount TYPE text")
    insert(sql, "p1", T0, amount="ten euros")
    from lakehouse.contracts.model import ContractViolation

    with pytest.raises(ContractViolation, match="'amount'"):
        run_extract(make_store(tmp_path / "home"), source_for(server, name))


def test_identifiers_are_refused_unless_plain():
    from lakehouse.sources.postgres import PostgresTable

    with pytest.raises(ValueError, match="not a plain SQL identifier"):
        PostgresTable(name="x", table="public.pay;ments", columns=("id", "ts"), key="id", watermark="ts")


# ---- end to end: PostgreSQL -> bronze/payments_raw -> silver/payments -> gold/order_revenue ---------


@pytest.mark.slow
def test_payments_flow_from_postgres_to_silver_and_gold(database, tmp_path, spark, monkeypatch):
    import dagster as dg

    from lakehouse.automation.refresh import refresh
    from lakehouse.settings import Settings
    from lakehouse.sources.sample import land_sample

    server, name, sql = database
    settings = Settings(home=tmp_path / "home", postgres_host=server.host, postgres_port=server.port, postgres_database=name,
                        postgres_user=server.username, postgres_sslmode="require", postgres_key_snapshot_hours=0.0001, postgres_batch_rows=4)
    land_sample(settings.home / "landing", seed=3, days=2, orders_per_day=8)
    monkeypatch.setenv("LAKEHOUSE_POSTGRES_PASSWORD", server.password)
    first = refresh(settings, dg.DagsterInstance.ephemeral(), trigger="test")
    assert first.success
    store = make_store(settings.home)
    orders = {r["order_id"]: r for r in store.read(ORDERS).to_pylist()}
    ids = sorted(orders)[:3]
    insert(sql, "pay-a", T0, order_id=ids[0], amount=str(orders[ids[0]]["amount"]), currency=orders[ids[0]]["currency"])
    insert(sql, "pay-b", T0, order_id=ids[1], amount="5.00", currency=orders[ids[1]]["currency"], status="refunded")
    insert(sql, "pay-c", T0, order_id=ids[1], amount="7.50", currency=orders[ids[1]]["currency"])
    insert(sql, "pay-d", T0, order_id=ids[2], amount="1.00", currency=orders[ids[2]]["currency"], status="pending")
    insert(sql, "pay-x", T0, order_id=ids[2], amount="-1.00", currency="EUR")  # broken: quarantined
    second = refresh(settings, dg.DagsterInstance.ephemeral(), trigger="test")
    assert second.success, [r.dagster_run.job_name for r in second.runs]
    assert [r.dagster_run.job_name for r in second.runs] == ["database_ingest", "publish"]

    silver = {r["payment_id"]: r for r in store.read(PAYMENTS).to_pylist()}
    assert sorted(silver) == ["pay-a", "pay-b", "pay-c", "pay-d"]
    rejects = store.read(PAYMENTS_REJECTS).to_pylist()
    assert [(r["reason"], '"payment_id":"pay-x"' in r["_raw"]) for r in rejects] == [("negative_amount", True)]
    revenue = {r["order_id"]: r for r in store.read(ORDER_REVENUE).to_pylist()}
    assert revenue[ids[0]]["net_revenue"] == orders[ids[0]]["amount"] and revenue[ids[0]]["payments"] == 1
    assert (revenue[ids[1]]["captured_amount"], revenue[ids[1]]["refunded_amount"], revenue[ids[1]]["net_revenue"]) == (
        Decimal("12.50"), Decimal("5.00"), Decimal("7.50"))
    assert revenue[ids[2]]["net_revenue"] == 0 and revenue[ids[2]]["payments"] == 1  # pending counts as a payment, not revenue
    assert set(revenue) == set(orders)

    sql("UPDATE payments SET status = 'refunded', updated_at = %s WHERE payment_id = 'pay-a'", T0 + dt.timedelta(hours=1))
    sql("DELETE FROM payments WHERE payment_id = 'pay-c'")
    third = refresh(settings, dg.DagsterInstance.ephemeral(), trigger="test")
    assert third.success
    silver = {r["payment_id"]: r for r in store.read(PAYMENTS).to_pylist()}
    assert sorted(silver) == ["pay-a", "pay-b", "pay-d"] and silver["pay-a"]["status"] == "refunded"
    revenue = {r["order_id"]: r for r in store.read(ORDER_REVENUE).to_pylist()}
    assert revenue[ids[0]]["net_revenue"] == 0 and revenue[ids[1]]["net_revenue"] == 0  # pay-b refunded, pay-c gone
    checks = {(e.asset_key.to_user_string(), e.check_name): e.passed for r in third.runs for e in r.get_asset_check_evaluations()}
    assert checks[("silver/payments", "records_accounted_for")]


@pytest.mark.parametrize("secret", ["PLAIN", "RDS-JSON"])
def test_the_password_can_come_from_secrets_manager(database, glue_endpoint, monkeypatch, secret):
    import json

    from lakehouse_tests.aws.server import REGION, aws_test_env

    server, name, _ = database
    aws_test_env(monkeypatch)
    body = server.password if secret == "PLAIN" else json.dumps({"username": server.username, "password": server.password})
    secret_name = f"lakehouse/source-db-{secret.lower()}"
    glue_endpoint.client("secretsmanager").create_secret(Name=secret_name, SecretString=body)
    source = source_for(server, name, password=None, password_secret=secret_name, region=REGION, endpoint_url=glue_endpoint.endpoint)
    with source.connect() as reader:
        assert reader.query("SELECT 1 AS one")["one"].to_pylist() == [1]
    missing = source_for(server, name, password=None, password_secret="lakehouse/no-such-secret", region=REGION, endpoint_url=glue_endpoint.endpoint)
    with pytest.raises(SourceSettingError, match="LAKEHOUSE_POSTGRES_PASSWORD_SECRET='lakehouse/no-such-secret' cannot be read"):
        with missing.connect():
            pass


def test_an_increasing_id_can_be_the_watermark(database, tmp_path):
    from lakehouse.contracts.model import Column, Layer, TableContract
    from lakehouse.contracts.tables import LINEAGE
    from lakehouse.sources.postgres import PostgresTable

    server, name, sql = database
    sql("CREATE TABLE public.audit_events (event_id bigint PRIMARY KEY, action text)")
    sql("INSERT INTO audit_events SELECT g, 'a' || g FROM generate_series(1, 5) g")
    events = PostgresTable(name="audit_events", table="public.audit_events", columns=("event_id", "action"), key="event_id",
                           watermark="event_id", watermark_kind="integer")
    contract = TableContract(name="audit_events_raw", layer=Layer.bronze, description="test", partition_by=("dt",), columns=(
        Column(name="event_id", type="long"), Column(name="action", type="string"),
        Column(name="_deleted", type="boolean", required=True), Column(name="_line_number", type="long", required=True),
        *LINEAGE, Column(name="dt", type="date", required=True)))
    store = make_store(tmp_path / "home")
    source = source_for(server, name, batch_rows=2, overlap_seconds=3, key_snapshot_hours=1)  # the overlap counts ids here

    def once():
        with source.connect() as reader:
            return extract(events, contract, contract, reader, store, source, CommitStamp("r", "bronze/audit_events_raw"), LOG)

    first = once()
    assert first.rows_appended == 5 and first.watermark == 5 and not first.key_snapshot  # deletes need an instant watermark
    sql("INSERT INTO audit_events VALUES (6, 'a6')")
    second = once()  # ids 2-5 read again (the overlap), found in Bronze: only 6 is appended
    assert second.rows_appended == 1 and second.rows_already_in_bronze == 4 and second.watermark == 6
    assert sorted(store.read(contract)["event_id"].to_pylist()) == [1, 2, 3, 4, 5, 6]
