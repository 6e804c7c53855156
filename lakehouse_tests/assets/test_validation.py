"""The Spark validation rules agree with the plain-Python reference, line by line, on edge cases."""

from __future__ import annotations

import json

import pytest

from lakehouse.assets.silver.customers import validate_customers
from lakehouse.assets.silver.orders import parse_order_events
from lakehouse_tests.reference import validate_customer_row, validate_order_line

GOOD = {"lsn": 5, "op": "u", "order_id": "o-1", "customer_id": "c-1", "status": "paid", "amount": 12.5,
        "currency": "EUR", "created_at": "2026-01-01T10:00:00+01:00", "updated_at": "2026-01-01T11:00:00Z"}


def line(**changes) -> str:
    record = {**GOOD, **changes}
    return json.dumps({k: v for k, v in record.items() if v is not ...})


ORDER_LINES = [
    line(),
    '{"lsn": 5, "op": "d", "order_id": "o-1"}',
    "{not json",
    "[1, 2]",
    line() + " trailing",
    line(lsn=...),
    line(lsn="abc"),
    line(lsn=True),
    line(lsn="5\n"),
    line(lsn=99999999999999999999),
    line(op=...),
    line(op="x"),
    line(order_id=""),
    line(customer_id=None),
    line(status="lost"),
    line(amount="ten"),
    line(amount=-0.01),
    line(amount="5\n"),
    line(amount=10**17),
    line(currency="eur"),
    line(currency="EUR\n"),
    line(created_at="2026-02-30T10:00:00Z"),
    line(created_at="2026-01-01T10:00:00"),
    line(updated_at="2026-01-01T11:00:00Z\n"),
    line(amount=12.345),
]


@pytest.fixture(scope="module")
def order_reasons(spark):
    rows = [(text, i + 1, "f", "b") for i, text in enumerate(ORDER_LINES)]
    df = spark.createDataFrame(rows, "_raw string, _line_number long, _source_file string, _batch_id string")
    return {r["_line_number"]: r["reason"] for r in parse_order_events(df).select("_line_number", "reason").collect()}


@pytest.mark.parametrize("index", range(len(ORDER_LINES)))
def test_order_rule_matches_reference(order_reasons, index):
    assert order_reasons[index + 1] == validate_order_line(ORDER_LINES[index])[1], ORDER_LINES[index]


CUSTOMER_LINES = [
    "c-1,Ann,ann@example.com,DE,2026-01-01T00:00:00Z",
    "c-1,Ann,ann@example.com,DE",
    ",Ann,ann@example.com,DE,2026-01-01T00:00:00Z",
    "c-1,Ann,ann@example.com,DE,",
    "c-1,Ann,ann@example.com,DE,yesterday",
    "c-1,Ann,not-an-email,DE,2026-01-01T00:00:00Z",
    "c-1,Ann,ann@example.com,Germany,2026-01-01T00:00:00Z",
    'c-1,"Doe, Ann",,,2026-01-01T00:00:00Z',
]


@pytest.mark.parametrize("text", CUSTOMER_LINES)
def test_customer_rule_matches_reference(spark, text):
    from lakehouse.sources.landing import CUSTOMER_HEADER, split_customer_row

    fields, error = split_customer_row(text)
    record = dict(zip(CUSTOMER_HEADER, fields or [None] * 5))
    df = spark.createDataFrame([{**record, "_parse_error": error, "_raw": text}],
                               "customer_id string, name string, email string, country string, updated_at string, _parse_error string, _raw string")
    assert validate_customers(df).first()["reason"] == validate_customer_row(text)[1]
