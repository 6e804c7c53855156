"""Helpers to build CDC batches for silver/orders in tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa

from lakehouse.contracts.tables import ORDERS

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def event(order_id: str, lsn: int, *, status: str = "placed", delete: bool = False, amount: str = "10.00") -> dict:
    if delete:
        return dict(order_id=order_id, customer_id=None, status=None, amount=None, currency=None, created_at=None,
                    updated_at=None, lsn=lsn, _source_file="f", _ingested_at=T0, _batch_id="b", _is_delete=True)
    return dict(order_id=order_id, customer_id="c1", status=status, amount=Decimal(amount), currency="EUR",
                created_at=T0, updated_at=T0 + dt.timedelta(seconds=lsn), lsn=lsn, _source_file="f",
                _ingested_at=T0, _batch_id="b", _is_delete=False)


def batch(*events: dict) -> pa.Table:
    schema = pa.schema([*(f.with_nullable(True) for f in ORDERS.arrow_schema), pa.field("_is_delete", pa.bool_())])
    return pa.Table.from_pylist(list(events), schema=schema)


def state(table: pa.Table) -> dict[str, tuple[str, int]]:
    return {r["order_id"]: (r["status"], r["lsn"]) for r in table.to_pylist()}
