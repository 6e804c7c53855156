"""Read the lakehouse's tables into plain Python shapes comparable with lakehouse_tests.reference."""

from __future__ import annotations

import datetime as dt

from lakehouse.contracts import tables as t
from lakehouse.io.table_store import TableStore
from lakehouse_tests.reference import Expected


def actual_state(store: TableStore) -> dict:
    orders = {
        r["order_id"]: {k: r[k] for k in ("customer_id", "status", "amount", "currency", "created_at", "updated_at", "lsn")}
        for r in store.read(t.ORDERS).to_pylist()
    }
    customers = {
        r["customer_id"]: {k: r[k] for k in ("name", "email", "country", "updated_at")} for r in store.read(t.CUSTOMERS).to_pylist()
    }
    rejects = lambda c: {(r["_source_file"], r["_line_number"], r["reason"]) for r in store.read(c).to_pylist()}  # noqa: E731
    daily = {
        (r["report_date"], r["currency"]): {k: r[k] for k in ("total_orders", "total_revenue", "unique_customers")}
        for r in store.read(t.DAILY_SALES).to_pylist()
    }
    summary = {
        r["customer_id"]: {k: r[k] for k in ("name", "email", "country", "order_count", "total_revenue")}
        for r in store.read(t.CUSTOMER_SUMMARY).to_pylist()
    }
    return {
        "orders": orders,
        "order_rejects": rejects(t.ORDERS_REJECTS),
        "customers": customers,
        "customer_rejects": rejects(t.CUSTOMERS_REJECTS),
        "daily_sales": daily,
        "customer_summary": summary,
        "bronze_counts": {"orders": store.read(t.ORDERS_RAW).num_rows, "customers": store.read(t.CUSTOMERS_RAW).num_rows},
    }


def expected_shape(expected: Expected) -> dict:
    utc = lambda v: v.astimezone(dt.UTC) if isinstance(v, dt.datetime) else v  # noqa: E731
    return {
        "orders": {k: {f: utc(v) for f, v in row.items()} for k, row in expected.orders.items()},
        "order_rejects": set(expected.order_rejects),
        "customers": {k: {f: utc(v) for f, v in row.items()} for k, row in expected.customers.items()},
        "customer_rejects": set(expected.customer_rejects),
        "daily_sales": dict(expected.daily_sales),
        "customer_summary": dict(expected.customer_summary),
        "bronze_counts": dict(expected.bronze_counts),
    }


def assert_matches(store: TableStore, expected: Expected) -> None:
    actual, wanted = actual_state(store), expected_shape(expected)
    for name in wanted:
        assert actual[name] == wanted[name], f"{name} differs from the reference"
