"""Quality in real runs: a blocking failure keeps main and Gold untouched; every record is accounted for."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dagster as dg
import pytest

from lakehouse.assets import all_assets
from lakehouse.contracts.tables import CUSTOMER_SUMMARY, ORDERS, ORDERS_RAW, ORDERS_REJECTS
from lakehouse.environment import resources_for
from lakehouse.settings import Settings
from lakehouse_tests.reference import validate_order_line

VALID = {"lsn": 1, "op": "c", "order_id": "o-1", "customer_id": "c-1", "status": "placed", "amount": 10.5,
         "currency": "EUR", "created_at": "2026-01-01T10:00:00Z", "updated_at": "2026-01-01T10:00:00Z"}


def event(**changes) -> str:
    return json.dumps({k: v for k, v in {**VALID, **changes}.items() if v is not ...})


ONE_OF_EACH = [
    "{broken", event(lsn=...), event(lsn="x"), event(op=...), event(op="z"), event(order_id=""), event(customer_id=...),
    event(status="lost"), event(amount="ten"), event(amount=-1), event(currency="euro"), event(created_at="yesterday"),
    event(updated_at="2026-13-01T00:00:00Z"),
]
GOOD = [event(order_id=f"o-{i}", lsn=i) for i in range(1, 5)] + [event(order_id="o-1", lsn=9, status="paid"), event(order_id="o-2", lsn=10, op="d")]


def land(settings: Settings, lines: list[str]) -> None:
    folder = settings.home / "landing" / "orders" / "dt=2026-01-01"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "handmade.jsonl").write_text("\n".join(lines) + "\n")



@pytest.fixture
def landed(tmp_path, spark):
    def make(lines: list[str], limit: float) -> Settings:
        settings = Settings(home=tmp_path / "lh", reject_rate_limit=limit)
        land(settings, lines)
        bronze = [a for a in all_assets() if ORDERS_RAW.asset_key in a.keys]
        assert dg.materialize(bronze, partition_key="2026-01-01", resources=resources_for(settings)).success
        return settings

    return make


def test_a_blocking_failure_keeps_main_and_stops_gold_in_the_same_run(landed):
    settings = landed(GOOD + ONE_OF_EACH, limit=0.05)  # 13 of 19 rejected: far over 5%
    store = resources_for(settings)["store"].get_store()
    assets = [a for a in all_assets() if {ORDERS.asset_key, CUSTOMER_SUMMARY.asset_key, dg.AssetKey(["silver", "customers"])}.intersection(a.keys)]
    result = dg.materialize(assets, resources=resources_for(settings), raise_on_error=False)
    assert not result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not checks["reject_rate_limit"].passed and checks["reject_rate_limit"].metadata["threshold"].value == 0.05
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert CUSTOMER_SUMMARY.asset_key not in materialized  # Gold did not run on unpublished Silver
    silver = next(e for e in result.get_asset_materialization_events() if e.asset_key == ORDERS.asset_key).materialization.metadata
    branch = silver["audit_branch"].value  # the write's own branch: audit-<start time>-<run id>-<random>
    assert silver["published"].value is False and branch.startswith("audit-") and result.run_id in branch
    assert silver["blocking_failures"].value == ["reject_rate_limit"]
    # main holds no orders; the audit branch holds the rejected snapshot for inspection
    assert store.read(ORDERS).num_rows == 0
    assert sorted(store.column(ORDERS, "order_id", branch=branch).to_pylist()) == ["o-1", "o-3", "o-4"]
    assert "lakehouse.applied.bronze.orders_raw" not in store.info(ORDERS).properties  # watermark not advanced


def test_every_record_of_a_handmade_file_is_accounted_for(landed):
    settings = landed(GOOD + ONE_OF_EACH, limit=1.0)
    store = resources_for(settings)["store"].get_store()
    from lakehouse.checks.accounting import accounting_checks

    keys = {ORDERS.asset_key, ORDERS_REJECTS.asset_key}
    assets = [a for a in all_assets() if keys.intersection(a.keys)]
    result = dg.materialize([*assets, *accounting_checks()[:1]], resources=resources_for(settings), selection=dg.AssetSelection.assets(*keys) | dg.AssetSelection.checks_for_assets(*keys))
    assert result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    accounted = checks["records_accounted_for"]
    assert accounted.passed
    assert {k: accounted.metadata[k].value for k in ("bronze_records", "records_read", "records_rejected", "records_in_quarantine")} == {
        "bronze_records": 19, "records_read": 19, "records_rejected": 13, "records_in_quarantine": 13,
    }
    silver = next(e for e in result.get_asset_materialization_events() if e.asset_key == ORDERS.asset_key).materialization.metadata
    assert silver["records_read"].value == 19 and silver["records_rejected"].value == 13
    # 6 valid events: o-1 inserted then updated in the same batch (one superseded), o-2 deleted
    # before it existed here, o-3 and o-4 inserted: 3 rows applied, 3 events superseded
    assert silver["records_applied"].value == 3 and silver["records_superseded"].value == 3
    reasons = {r["_line_number"]: r["reason"] for r in store.read(ORDERS_REJECTS).to_pylist()}
    expected = {len(GOOD) + i + 1: validate_order_line(line)[1] for i, line in enumerate(ONE_OF_EACH)}
    assert reasons == expected and len(set(expected.values())) == 13


def test_lakehouse_rejects_groups_by_reason(landed, tmp_path):
    settings = landed(GOOD + ONE_OF_EACH, limit=1.0)
    assert dg.materialize([a for a in all_assets() if ORDERS_REJECTS.asset_key in a.keys], resources=resources_for(settings)).success
    out = subprocess.run([sys.executable, "-m", "lakehouse.cli", "rejects"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "LAKEHOUSE_HOME": str(settings.home)})
    assert out.returncode == 0, out.stderr
    assert "silver/orders_rejects: 13 reject(s)" in out.stdout
    assert "negative_amount" in out.stdout and "malformed_json" in out.stdout


def test_refresh_exits_non_zero_and_says_which_check_blocked(tmp_path):
    home = tmp_path / "cli"
    land(Settings(home=home), GOOD + ONE_OF_EACH)
    env = {**os.environ, "LAKEHOUSE_HOME": str(home), "DAGSTER_HOME": str(tmp_path / "dh"), "LAKEHOUSE_REJECT_RATE_LIMIT": "0.05"}
    out = subprocess.run([sys.executable, "-m", "lakehouse.cli", "refresh"], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 1
    assert "check reject_rate_limit on silver/orders failed (1 failing): reject rate within the configured limit" in out.stderr
    assert "(publish)" not in out.stdout  # no Gold run after a failed ingest
