"""The Spark validation rules agree with the plain-Python reference, line by line, on edge cases."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from lakehouse.assets.bronze import customer_row
from lakehouse.assets.silver.customers import validate_customers
from lakehouse.assets.silver.orders import orders, parse_order_events
from lakehouse.sources.landing import CUSTOMER_HEADER
from lakehouse_tests.reference import validate_customer_row, validate_order_line

GOOD = {"lsn": 5, "op": "u", "order_id": "o-1", "customer_id": "c-1", "status": "paid", "amount": 12.5,
        "currency": "EUR", "created_at": "2026-01-01T10:00:00+01:00", "updated_at": "2026-01-01T11:00:00Z"}
ORDER_SCHEMA = "_raw string, _line_number long, _source_file string, _batch_id string"


def line(**changes) -> str:
    record = {**GOOD, **changes}
    return json.dumps({k: v for k, v in record.items() if v is not ...})


def raw(**changes: str) -> str:
    """A record whose changed fields are given as JSON text, exactly as it appears in the line."""
    fields = {k: json.dumps(v) for k, v in GOOD.items()} | changes
    return "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items() if v is not ...) + "}"


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
    df = spark.createDataFrame(rows, ORDER_SCHEMA)
    return {r["_line_number"]: r["reason"] for r in parse_order_events(df).select("_line_number", "reason").collect()}


@pytest.mark.parametrize("index", range(len(ORDER_LINES)))
def test_order_rule_matches_reference(order_reasons, index):
    assert order_reasons[index + 1] == validate_order_line(ORDER_LINES[index])[1], ORDER_LINES[index]


# --- bad input, each with the reason the contract gives it (docs/landing-contract.md) -----------

DEEP = '{"a": ' + "[" * 63 + "]" * 63 + "}"  # the record's object is level 1: 64 levels in all
ORDER_CASES = [
    # amounts: a number's text is the literal as written, never a reformatted double
    (raw(amount="12345678.90"), None),
    (raw(amount="10000000.00"), None),
    (raw(amount="0.0001"), None),
    (raw(amount="9999999999999999.99"), None),
    (raw(amount="9999999999999999.994"), None),
    (raw(amount="9999999999999999.995"), "invalid_type:amount"),  # rounds to 10^16: no decimal(18,2)
    (raw(amount="0.1234567890123456789012345678901234567890"), None),
    (raw(amount="1.0E2"), "invalid_type:amount"),
    (raw(amount="1e2"), "invalid_type:amount"),
    (raw(amount="1e308"), "invalid_type:amount"),
    (raw(amount="-0.0"), None),
    (raw(amount="-0"), None),
    (raw(amount="-0.00000000001"), "negative_amount"),  # below zero, though it rounds to 0.00
    (raw(amount='"12.50"'), None),
    (raw(amount="NaN"), "malformed_json"),
    (raw(amount="Infinity"), "malformed_json"),
    (raw(amount="-Infinity"), "malformed_json"),
    (raw(amount='"NaN"'), "invalid_type:amount"),
    (raw(amount="[12.5]"), "invalid_type:amount"),
    (raw(amount="true"), "invalid_type:amount"),
    # lsn
    (raw(lsn="1234567890123456789"), None),
    (raw(lsn="9223372036854775807"), None),
    (raw(lsn="9223372036854775808"), "invalid_type:lsn"),
    (raw(lsn="-9223372036854775808"), None),
    (raw(lsn="-5"), None),
    (raw(lsn='"7"'), None),
    (raw(lsn='"007"'), None),
    (raw(lsn="5.0"), "invalid_type:lsn"),
    (raw(lsn="5e0"), "invalid_type:lsn"),
    (raw(lsn='"5.0"'), "invalid_type:lsn"),
    (raw(lsn="false"), "invalid_type:lsn"),
    (raw(lsn="[5]"), "invalid_type:lsn"),
    (raw(lsn='{"v": 5}'), "invalid_type:lsn"),
    (raw(lsn="null"), "missing_field:lsn"),
    # strict JSON (RFC 8259): none of Jackson's or Python's lenient extensions
    (raw().replace('"', "'"), "malformed_json"),
    ("{'lsn': 1, 'op': 'd', 'order_id': 'o-1'}", "malformed_json"),
    ('{lsn: 1, "op": "d", "order_id": "o-1"}', "malformed_json"),
    ('{"lsn": 1, /* c */ "op": "d", "order_id": "o-1"}', "malformed_json"),
    ('{"lsn": 1, "op": "d", "order_id": "o-1"} // c', "malformed_json"),
    ('{"lsn": 1, "op": "d", "order_id": "o-1"} # c', "malformed_json"),
    (raw(lsn="007"), "malformed_json"),
    (raw(lsn="+5"), "malformed_json"),
    (raw(amount=".5"), "malformed_json"),
    (raw(amount="5."), "malformed_json"),
    (raw(amount="0x10"), "malformed_json"),
    (raw(amount="1.5.3"), "malformed_json"),
    (raw(amount="1e"), "malformed_json"),
    (raw(amount="- 1"), "malformed_json"),
    (raw(customer_id=r'"c\q"'), "malformed_json"),
    (raw(customer_id=r'"c\'"'), "malformed_json"),
    (raw(customer_id=r'"c\u12"'), "malformed_json"),
    (raw(customer_id='"c\t1"'), "malformed_json"),  # raw control characters must be escaped
    (raw(customer_id='"c\x011"'), "malformed_json"),
    (raw(customer_id='"c\x7f1"'), None),  # DEL is not a control character in JSON
    (raw()[:-1] + ",}", "malformed_json"),
    (raw(customer_id='["a",]'), "malformed_json"),
    (raw(customer_id="[1,,2]"), "malformed_json"),
    ('{"lsn": 1, "op": "d", "order_id": "o-1",, "x": 1}', "malformed_json"),
    ('{"lsn": 1 "op": "d", "order_id": "o-1"}', "malformed_json"),
    ('{"lsn": 1, "op": "d", "order_id": "o-1", 5: 1}', "malformed_json"),  # a number is no name
    ('{"lsn": 1, "op": "d", "order_id": "o-1", "x": 1 2}', "malformed_json"),
    ('{"lsn": 1, "op": "d", "order_id": "o-1", "x": tru}', "malformed_json"),
    ('{"lsn": 1, "op": "d", "order_id": "o-1", "x": "a"5}', "malformed_json"),
    ('{"lsn": 1, "op": "d", "order_id": "o-1"', "malformed_json"),
    ('{"lsn": 1, "op": "d", "order_id": "o-1}', "malformed_json"),
    # nothing but white space after the object
    (raw() + " x", "malformed_json"),
    (raw() + "}", "malformed_json"),
    (raw() + "]", "malformed_json"),
    (raw() + "][", "malformed_json"),
    (raw() + "]{}", "malformed_json"),
    (raw() + ",{}", "malformed_json"),
    (raw() + ',"x"', "malformed_json"),
    (raw() + " " + raw(), "malformed_json"),
    (raw() + ' "x}', "malformed_json"),
    (raw() + " 5", "malformed_json"),
    (raw() + "\u00a0", "malformed_json"),  # not JSON white space
    (raw() + "\u2028", "malformed_json"),
    ("\ufeff" + raw(), "malformed_json"),  # a BOM is not white space inside a file
    ("\t " + raw() + " \t\r", None),  # JSON white space around the object
    # not an object
    ("[1, 2]", "malformed_json"),
    ("[]", "malformed_json"),
    ("[" + raw() + "]", "malformed_json"),
    ('"just a string"', "malformed_json"),
    ("5", "malformed_json"),
    ("-5.5", "malformed_json"),
    ("null", "malformed_json"),
    ("true", "malformed_json"),
    ("{}", "missing_field:lsn"),
    # characters
    (raw(customer_id='"c\u20281"'), None),  # raw U+2028 / U+2029 / U+0085 are allowed in strings
    (raw(customer_id='"c\u2029\u00851"'), None),
    (raw(customer_id=r'"c\u2028\"\\\/1"'), None),
    (raw(customer_id=r'"\ud83d\ude00"'), None),  # a surrogate pair escape is one character
    (raw(customer_id='"\U0001f600"'), None),
    (raw(customer_id=r'"\ud83d"'), "malformed_json"),  # an unpaired surrogate is no character
    (raw(customer_id=r'"\ude00x"'), "malformed_json"),
    (raw(customer_id=r'"\ud83d\ud83d\ude00"'), "malformed_json"),
    (raw(customer_id=r'"\\ud83d"'), None),  # an escaped backslash, then text
    (raw(customer_id=r'"\u0000"'), None),
    (raw(customer_id='{"k": ' + r'"\ud800"' + "}"), "malformed_json"),  # nested too
    # limits
    (DEEP, "missing_field:lsn"),
    ('{"a": ' + "[" * 64 + "]" * 64 + "}", "malformed_json"),
    ('{"a": ' + "[" * 5000 + "]" * 5000 + "}", "malformed_json"),
    # duplicate names: the last one counts
    (raw()[:-1] + ', "amount": -1}', "negative_amount"),
    (raw(amount='"x"')[:-1] + ', "amount": 1}', None),
    # op, ids, text kinds
    (raw(op='"C"'), "invalid_op"),
    (raw(op='"x"'), "invalid_op"),
    (raw(op="1"), "invalid_op"),
    (raw(op='["c"]'), "invalid_op"),
    (raw(op='"d"', amount='"junk"', status="7"), None),
    (raw(order_id="123"), None),
    (raw(order_id="1.50"), None),
    (raw(order_id="true"), "invalid_type:order_id"),
    (raw(order_id='["o-1"]'), "invalid_type:order_id"),
    (raw(order_id="{}"), "invalid_type:order_id"),
    (raw(order_id='"o-1"', op='"d"', lsn="[1]"), "invalid_type:lsn"),
    (raw(customer_id="7"), None),
    (raw(customer_id="false"), "invalid_type:customer_id"),
    (raw(customer_id='{"id": "c-1"}', status='"lost"'), "invalid_type:customer_id"),
    (raw(customer_id="false", currency=...), "missing_field:currency"),
    (raw(status="1"), "invalid_status"),
    (raw(status='["paid"]'), "invalid_status"),
    (raw(currency='["EUR"]'), "invalid_currency"),
    # timestamps
    (raw(created_at='"2026-01-01T10:00:00"'), "invalid_timestamp:created_at"),
    (raw(created_at='"2026-01-01T10:00:00Z"'), None),
    (raw(created_at='"2026-01-01T10:00:00.123456Z"'), None),
    (raw(created_at='"2026-01-01T10:00:00z"'), "invalid_timestamp:created_at"),
    (raw(created_at='"2026-01-01T10:00:00+18:00"'), None),
    (raw(created_at='"2026-01-01T10:00:00+18:01"'), "invalid_timestamp:created_at"),
    (raw(created_at='"2026-01-01T23:59:60Z"'), "invalid_timestamp:created_at"),
    (raw(created_at="1767261600"), "invalid_timestamp:created_at"),
    (raw(updated_at='"2026-01-01T11:00:00"'), "invalid_timestamp:updated_at"),
    (raw(updated_at='"2026-01-01T11:00:00\u2028"'), "invalid_timestamp:updated_at"),
]


@pytest.fixture(scope="module")
def order_case_reasons(spark):
    rows = [(text, i + 1, "f", "b") for i, (text, _) in enumerate(ORDER_CASES)]
    df = spark.createDataFrame(rows, ORDER_SCHEMA)
    return {r["_line_number"]: r["reason"] for r in parse_order_events(df).select("_line_number", "reason").collect()}


@pytest.mark.parametrize("index", range(len(ORDER_CASES)))
def test_order_case_has_the_contract_reason(order_case_reasons, index):
    text, reason = ORDER_CASES[index]
    assert validate_order_line(text)[1] == reason, f"reference: {text[:200]!r}"
    assert order_case_reasons[index + 1] == reason, f"spark: {text[:200]!r}"


# The values Silver stores for valid events: every number's text as written, rounded half-up.
VALUE_CASES = {
    "a": raw(amount="12345678.90"),
    "b": raw(amount="10000000.00"),
    "c": raw(amount="0.0001"),
    "d": raw(amount="9999999999999999.99"),
    "e": raw(amount="0.005", lsn="1234567890123456789"),
    "f": raw(amount="-0.0", lsn="-9223372036854775808"),
    "g": raw(amount='"12.345"', lsn='"007"'),
    "h": raw(customer_id='"c\u20281"', lsn="9223372036854775807"),
    "i": raw(customer_id="1.50", amount="2.675"),
    "j": raw(customer_id=r'"a\"b\\c\u00e9\ud83d\ude00"', amount="0.1234567890123456789012345678901234567890"),
}


def test_valid_events_keep_the_exact_values(spark):
    texts = [raw_line.replace('"o-1"', json.dumps(key)) for key, raw_line in VALUE_CASES.items()]
    df = spark.createDataFrame([(text, i + 1, "f", "b") for i, text in enumerate(texts)], ORDER_SCHEMA)
    df = df.withColumn("_ingested_at", df["_batch_id"].cast("timestamp"))
    got = {r["order_id"]: r for r in orders.fn(df).collect()}
    assert sorted(got) == sorted(VALUE_CASES)
    for text in texts:
        event, reason = validate_order_line(text)
        assert reason is None, text
        row = got[event["order_id"]]
        assert (row["lsn"], row["amount"], row["customer_id"]) == (event["lsn"], event["amount"], event["customer_id"]), text
    assert got["a"]["amount"] == Decimal("12345678.90") and got["d"]["amount"] == Decimal("9999999999999999.99")
    assert got["e"]["lsn"] == 1234567890123456789 and got["e"]["amount"] == Decimal("0.01")
    assert got["f"]["amount"] == 0 and got["f"]["lsn"] == -(2**63)
    assert got["g"]["lsn"] == 7 and got["g"]["amount"] == Decimal("12.35")
    assert got["h"]["customer_id"] == "c\u20281"
    assert got["i"]["customer_id"] == "1.50" and got["i"]["amount"] == Decimal("2.68")
    assert got["j"]["customer_id"] == 'a"b\\c\u00e9\U0001f600'


def test_a_10_mb_line(spark):
    """A 10 MB record is one record like any other: valid when it is valid JSON, else malformed."""
    pad = "x" * (10 * 1024 * 1024)
    texts = [raw(note=json.dumps(pad)), raw(note=json.dumps(pad))[:-1], raw(note="[" + "1," * 1_000_000 + "1]")]
    df = spark.createDataFrame([(text, i + 1, "f", "b") for i, text in enumerate(texts)], ORDER_SCHEMA)
    got = {r["_line_number"]: r["reason"] for r in parse_order_events(df).select("_line_number", "reason").collect()}
    assert got == {1: None, 2: "malformed_json", 3: None}
    assert [validate_order_line(text)[1] for text in texts] == [None, "malformed_json", None]


def test_a_line_over_the_size_limit_is_malformed(spark):
    text = raw(note=json.dumps("é" * (8 * 1024 * 1024)))  # 16 MiB of UTF-8 in the string alone
    df = spark.createDataFrame([(text, 1, "f", "b")], ORDER_SCHEMA)
    assert parse_order_events(df).first()["reason"] == "malformed_json"
    assert validate_order_line(text)[1] == "malformed_json"


# --- customers -----------------------------------------------------------------------------------

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

CUSTOMER_CASES = [
    ("c-1,Ann,ann@example.com,DE,2026-01-01T00:00:00Z", None),
    ('c-1,"Ann ""Ace"" Doe",ann@example.com,DE,2026-01-01T00:00:00Z', None),
    ('"c-1","Ann","","",2026-01-01T00:00:00Z', None),  # quoted fields; "" is empty, so null
    ("c-1,Ann\u2028Doe,ann@example.com,DE,2026-01-01T00:00:00Z", None),
    ("c-1,Ann,ann@example.com,DE,2026-01-01T00:00:00Z\r", None),  # a CR left after CRLF is line end
    # a quoted field spanning two lines: each physical line is a record of its own
    ('c-1,"Ann', "malformed_csv"),
    ('Doe",ann@example.com,DE,2026-01-01T00:00:00Z', "malformed_csv"),
    ('c-1",Ann,ann@example.com,DE,2026-01-01T00:00:00Z', "malformed_csv"),  # a quote in an unquoted field
    ('c-1,Ann "Ace" Doe,ann@example.com,DE,2026-01-01T00:00:00Z', "malformed_csv"),
    ('c-1,"Ann"x,ann@example.com,DE,2026-01-01T00:00:00Z', "malformed_csv"),
    ('c-1, "Ann",ann@example.com,DE,2026-01-01T00:00:00Z', "malformed_csv"),
    ("c-1,Ann\rDoe,ann@example.com,DE,2026-01-01T00:00:00Z", "malformed_csv"),
    ("c-1,Ann,ann@example.com,DE,2026-01-01T00:00:00Z,extra", "malformed_csv"),
    ("c-1,Ann,ann@example.com,DE,2026-01-01T00:00:00", "invalid_timestamp:updated_at"),
    ("c-1,Ann,ann@example.com,DE,2026-01-01T00:00:00+01:00", None),
    ("c-1,Ann,ann@example.com,de,2026-01-01T00:00:00Z", "invalid_country"),
]


def _customer_reason(spark, text: str) -> str | None:
    fields, error = customer_row(text)
    record = dict(zip(CUSTOMER_HEADER, fields or [None] * 5))
    df = spark.createDataFrame([{**record, "_parse_error": error, "_raw": text}],
                               "customer_id string, name string, email string, country string, updated_at string, _parse_error string, _raw string")
    return validate_customers(df).first()["reason"]


@pytest.mark.parametrize("text", CUSTOMER_LINES)
def test_customer_rule_matches_reference(spark, text):
    assert _customer_reason(spark, text) == validate_customer_row(text)[1]


@pytest.mark.parametrize(("text", "reason"), CUSTOMER_CASES)
def test_customer_case_has_the_contract_reason(spark, text, reason):
    assert validate_customer_row(text)[1] == reason, "reference"
    assert _customer_reason(spark, text) == reason, "spark"
