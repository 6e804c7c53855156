"""One order dated outside the daily partitions never holds back the Gold days of the others."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pyarrow.compute as pc
import pytest

from lakehouse.automation.refresh import refresh
from lakehouse.contracts.tables import DAILY_SALES
from lakehouse.environment import resources_for


def order(order_id: str, created_at: str) -> str:
    return json.dumps(dict(lsn=1, op="c", order_id=order_id, customer_id="c1", status="placed", amount="5.00",
                           currency="EUR", created_at=created_at, updated_at=created_at))


@pytest.mark.slow
def test_orders_dated_year_1_or_9999_are_reported_and_other_days_built(settings, spark):
    landing = Path(settings.landing_root) / "orders" / "dt=2026-01-02"
    landing.mkdir(parents=True)
    lines = [order("ancient", "0001-01-01T00:00:00Z"), order("future", "9999-12-31T23:59:59Z"), order("normal", "2026-01-02T10:00:00Z")]
    (landing / "a.jsonl").write_text("\n".join(lines) + "\n")
    said: list[str] = []
    instance = dg.DagsterInstance.ephemeral()
    outcome = refresh(settings, instance, log=said.append)
    assert outcome.success
    assert any("0001-01-01" in line and "9999-12-31" in line and "LAKEHOUSE_PARTITIONS_START" in line for line in said), said
    store = resources_for(settings)["store"].get_store()
    days = store.read(DAILY_SALES)["report_date"]
    assert days.to_pylist() == [dt.date(2026, 1, 2)]

    # A later day builds too, and the unbuildable days do not come back as pending work.
    later = Path(settings.landing_root) / "orders" / "dt=2026-01-03"
    later.mkdir(parents=True)
    (later / "b.jsonl").write_text(order("next", "2026-01-03T09:00:00Z") + "\n")
    said.clear()
    assert refresh(settings, instance, log=said.append).success
    built = store.read(DAILY_SALES)
    assert sorted(built["report_date"].to_pylist()) == [dt.date(2026, 1, 2), dt.date(2026, 1, 3)]
    assert pc.sum(built["total_orders"]).as_py() == 2
    said.clear()
    third = refresh(settings, instance, log=said.append)
    assert third.runs == [] and not any("LAKEHOUSE_PARTITIONS_START" in line for line in said)
