"""Bad records on real landing files, through Bronze (LandingZone.lines + the record readers) and the
Silver validation: each gets the contract's reason, the valid records of the same file are applied,
and Spark agrees with the plain-Python reference (docs/landing-contract.md)."""

from __future__ import annotations

import codecs
import gzip
import json
import re
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse.assets.bronze import customer_records, order_records, read_landing_files
from lakehouse.assets.silver.customers import customers, validate_customers
from lakehouse.assets.silver.orders import orders, parse_order_events
from lakehouse.contracts.tables import CUSTOMERS_RAW, ORDERS_RAW
from lakehouse.io.spark_frames import arrow_to_spark
from lakehouse.sources.landing import LandingZone
from lakehouse_tests.reference import expected_state, iter_records

DAY = "dt=2026-01-01"


def order(order_id: str, lsn: int | str = 1, **changes) -> str:
    """An order event as JSON text; changed fields are given as the JSON text of their value."""
    fields = {"lsn": str(lsn), "op": '"c"', "order_id": json.dumps(order_id), "customer_id": '"c-1"', "status": '"paid"',
              "amount": "10.00", "currency": '"EUR"', "created_at": '"2026-01-01T10:00:00+01:00"',
              "updated_at": '"2026-01-01T11:00:00Z"'} | changes
    return "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items() if v is not ...) + "}"


def land(landing: Path, relative: str, data: bytes) -> Path:
    path = landing / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if relative.endswith(".gz") else data)
    return path


def unescape(raw: str) -> bytes:
    """The bytes of a not_utf8 record from its ``_raw``: ``\\\\`` is a backslash, ``\\xhh`` a byte."""
    parts = re.split(r"(\\\\|\\x[0-9a-f]{2})", raw)
    return b"".join(
        b"\\" if p == "\\\\" else bytes([int(p[2:], 16)]) if p.startswith("\\x") else p.encode() for p in parts
    )


def bronze(landing: Path, contract, source: str, reader) -> pa.Table:
    zone = LandingZone(str(landing))
    return read_landing_files(contract, zone, zone.files(source), reader, batch_id="b")


# --- orders --------------------------------------------------------------------------------------

BAD_BYTES = order("o-bytes")[:-1].encode() + b', "note": "caf\xe9 \\ \xff\xfe"}'
ORDER_LINES: list[tuple[bytes, str | None]] = [
    (codecs.BOM_UTF8 + order("o-bom").encode(), None),  # a BOM starting the file is not data
    (b"", "blank"),
    (order("o-big", amount="12345678.90").encode(), None),
    (order("o-ten-million", amount="10000000.00").encode(), None),
    (order("o-tiny", amount="0.0001").encode(), None),
    (order("o-max", amount="9999999999999999.99").encode(), None),
    (order("o-exp", amount="1.0E2").encode(), "invalid_type:amount"),
    (order("o-lsn19", lsn=1234567890123456789).encode(), None),
    (order("o-lsn-string", lsn='"7"').encode(), None),
    (order("o-lsn-negative", lsn=-7).encode(), None),
    (order("o-lsn-float", lsn="7.0").encode(), "invalid_type:lsn"),
    (order("o-nan", amount="NaN").encode(), "malformed_json"),
    (order("o-huge", amount="1e308").encode(), "invalid_type:amount"),
    (order("o-minus-zero", amount="-0.0").encode(), None),
    (order("o-no-offset", created_at='"2026-01-01T10:00:00"').encode(), "invalid_timestamp:created_at"),
    (order("o-zulu", created_at='"2026-01-01T09:00:00Z"').encode(), None),
    (order("o-op", op='"upsert"').encode(), "invalid_op"),
    (b"{'lsn': 1, 'op': 'd', 'order_id': 'o-quotes'}", "malformed_json"),
    (order("o-truncated").encode()[:-1], "malformed_json"),
    (b"[1, 2]", "malformed_json"),
    (b'"a string"', "malformed_json"),
    (b"42", "malformed_json"),
    (order("o-ls", customer_id='"c-\u2028-1"').encode(), None),  # U+2028 is no line end
    (order("o-crlf").encode() + b"\r", None),  # CRLF: the CR is part of the line end
    (BAD_BYTES, "not_utf8"),
    (b"\xff", "not_utf8"),
    (order("o-dup", lsn=3).encode(), None),  # the same line twice: both valid, the later one wins
    (order("o-dup", lsn=3).encode(), None),
    (order("o-10mb", note=json.dumps("x" * (10 * 1024 * 1024))).encode(), None),
    (order("o-10mb-bad", note=json.dumps("x" * (10 * 1024 * 1024))).encode()[:-1], "malformed_json"),
    (b"   \t", "blank"),
]


@pytest.fixture(scope="module")
def order_landing(tmp_path_factory) -> Path:
    landing = tmp_path_factory.mktemp("landing")
    land(landing, f"orders/{DAY}/a.jsonl", b"\n".join(line for line, _ in ORDER_LINES) + b"\n")
    land(landing, f"orders/{DAY}/b.jsonl.gz", codecs.BOM_UTF8 + order("o-gz").encode() + b"\r\n" + b"\xc3\x28\r\n")
    return landing


@pytest.fixture(scope="module")
def order_bronze(order_landing) -> pa.Table:
    return bronze(order_landing, ORDERS_RAW, "orders", order_records)


@pytest.fixture(scope="module")
def order_silver(spark, order_bronze):
    df = arrow_to_spark(spark, order_bronze, ORDERS_RAW.spark_schema)
    reasons = {(r["_source_file"], r["_line_number"]): r["reason"]
               for r in parse_order_events(df).select("_source_file", "_line_number", "reason").collect()}
    applied = {r["order_id"]: r for r in orders.fn(df).collect()}
    return reasons, applied


def test_bronze_keeps_every_order_record_as_landed(order_bronze):
    rows = {(r["_source_file"], r["_line_number"]): r for r in order_bronze.to_pylist()}
    a = f"orders/{DAY}/a.jsonl"
    expected_lines = {i + 1 for i, (_, reason) in enumerate(ORDER_LINES) if reason != "blank"}
    assert {n for f, n in rows if f == a} == expected_lines
    assert rows[(a, 1)]["_raw"] == order("o-bom")  # no BOM
    assert rows[(a, 24)]["_raw"] == order("o-crlf")  # no CR
    assert rows[(a, 23)]["_raw"] == order("o-ls", customer_id='"c-\u2028-1"')
    for number, (line, reason) in enumerate(ORDER_LINES, start=1):
        if reason == "not_utf8":
            row = rows[(a, number)]
            assert row["_parse_error"] == "not_utf8"
            assert unescape(row["_raw"]) == line  # every byte kept, reversibly
        elif reason != "blank":
            assert rows[(a, number)]["_parse_error"] is None
    assert rows[(a, 25)]["_raw"] == order("o-bytes")[:-1] + r', "note": "caf\xe9 \\ \xff\xfe"}'
    assert rows[(f"orders/{DAY}/b.jsonl.gz", 2)]["_raw"] == r"\xc3("


def test_every_bad_order_record_gets_its_reason_and_the_valid_ones_are_applied(order_landing, order_silver):
    reasons, applied = order_silver
    a = f"orders/{DAY}/a.jsonl"
    for number, (_, reason) in enumerate(ORDER_LINES, start=1):
        if reason != "blank":
            assert reasons[(a, number)] == reason, (number, ORDER_LINES[number - 1][0][:120])
    assert reasons[(f"orders/{DAY}/b.jsonl.gz", 1)] is None
    assert reasons[(f"orders/{DAY}/b.jsonl.gz", 2)] == "not_utf8"
    valid = {"o-bom", "o-big", "o-ten-million", "o-tiny", "o-max", "o-lsn19", "o-lsn-string", "o-lsn-negative",
             "o-minus-zero", "o-zulu", "o-ls", "o-crlf", "o-dup", "o-10mb", "o-gz"}
    assert set(applied) == valid
    assert applied["o-big"]["amount"] == Decimal("12345678.90")
    assert applied["o-ten-million"]["amount"] == Decimal("10000000.00")
    assert applied["o-tiny"]["amount"] == Decimal("0.00")
    assert applied["o-max"]["amount"] == Decimal("9999999999999999.99")
    assert applied["o-minus-zero"]["amount"] == Decimal("0.00")
    assert applied["o-lsn19"]["lsn"] == 1234567890123456789
    assert (applied["o-lsn-string"]["lsn"], applied["o-lsn-negative"]["lsn"]) == (7, -7)
    assert applied["o-ls"]["customer_id"] == "c-\u2028-1"


def test_spark_agrees_with_the_reference_on_the_order_files(order_landing, order_silver):
    reasons, applied = order_silver
    expected = expected_state(order_landing)
    assert {(f, n, r) for (f, n), r in reasons.items() if r} == expected.order_rejects
    assert set(applied) == set(expected.orders)
    for order_id, event in expected.orders.items():
        row = applied[order_id]  # timestamps: compared in test_pipeline, through Arrow with their zone
        fields = ("lsn", "customer_id", "status", "amount", "currency")
        assert {k: row[k] for k in fields} == {k: event[k] for k in fields}, order_id
    texts = {(f, n): text for f, n, text, _ in iter_records(order_landing, "orders")}
    assert set(texts) == set(reasons)
    assert texts[(f"orders/{DAY}/a.jsonl", 25)] == order("o-bytes")[:-1] + r', "note": "caf\xe9 \\ \xff\xfe"}'


# --- customers -----------------------------------------------------------------------------------

HEADER = b"customer_id,name,email,country,updated_at"
GOOD_ROW = "{cid},Ann,ann@example.com,DE,2026-01-01T00:00:00Z"


def row(cid: str) -> bytes:
    return GOOD_ROW.format(cid=cid).encode()


CUSTOMER_FILES: dict[str, tuple[bytes, list[tuple[bytes, str | None]]]] = {
    # an Excel-style file: BOM before the header, CRLF line ends
    "bom.csv": (codecs.BOM_UTF8 + HEADER, [
        (row("c-bom"), None),
        (b'c-split,"Ann', "malformed_csv"),  # a quoted field holding a line break: two records
        (b'Doe",ann@example.com,DE,2026-01-01T00:00:00Z', "malformed_csv"),
        (b'"c-split2\nx",Ann,ann@example.com,DE,2026-01-01T00:00:00Z'.split(b"\n")[0], "malformed_csv"),
        (b'x",Ann,ann@example.com,DE,2026-01-01T00:00:00Z', "malformed_csv"),
        (b"c-latin,Ren\xe9,ren@example.com,FR,2026-01-01T00:00:00Z", "not_utf8"),
        (row("c-dup"), None),
        (row("c-dup"), None),
        (b"c-ls,Ann\xe2\x80\xa8Doe,ann@example.com,DE,2026-01-01T00:00:00Z", None),
        (b"", "blank"),
    ]),
    "reordered.csv": (b"name,customer_id,email,country,updated_at", [(row("c-r"), "malformed_csv")]),
    "missing.csv": (b"customer_id,name,email,updated_at", [(row("c-m"), "malformed_csv")]),
    "extra.csv": (HEADER + b",phone", [(row("c-e"), "malformed_csv")]),
    "spaced.csv": (b"customer_id, name,email,country,updated_at", [(row("c-s"), "malformed_csv")]),
    "quoted.csv": (b'"customer_id","name","email","country","updated_at"', [(row("c-q"), "malformed_csv")]),
    "latin-header.csv": (b"customer_id,n\xe4me,email,country,updated_at", [(row("c-l"), "malformed_csv"),
                                                                           (b"c-l2,\xff,,,2026-01-01T00:00:00Z", "not_utf8")]),
}


@pytest.fixture(scope="module")
def customer_landing(tmp_path_factory) -> Path:
    landing = tmp_path_factory.mktemp("landing")
    for name, (header, rows) in CUSTOMER_FILES.items():
        end = b"\r\n" if name == "bom.csv" else b"\n"
        land(landing, f"customers/{DAY}/{name}", end.join([header, *(line for line, _ in rows)]) + end)
    return landing


@pytest.fixture(scope="module")
def customer_silver(spark, customer_landing):
    table = bronze(customer_landing, CUSTOMERS_RAW, "customers", customer_records)
    df = arrow_to_spark(spark, table, CUSTOMERS_RAW.spark_schema)
    reasons = {(r["_source_file"], r["_line_number"]): r["reason"]
               for r in validate_customers(df).select("_source_file", "_line_number", "reason").collect()}
    applied = {r["customer_id"]: r for r in customers.fn(df).collect()}
    return table, reasons, applied


def test_every_bad_customer_record_gets_its_reason_and_the_valid_ones_are_applied(customer_silver):
    table, reasons, applied = customer_silver
    wanted = {}
    for name, (_, rows) in CUSTOMER_FILES.items():
        for number, (_, reason) in enumerate(rows, start=2):
            if reason != "blank":
                wanted[(f"customers/{DAY}/{name}", number)] = reason
    assert reasons == wanted
    assert set(applied) == {"c-bom", "c-dup", "c-ls"}
    assert applied["c-ls"]["name"] == "Ann\u2028Doe"
    raws = {(r["_source_file"], r["_line_number"]): r["_raw"] for r in table.to_pylist()}
    assert raws[(f"customers/{DAY}/bom.csv", 7)] == r"c-latin,Ren\xe9,ren@example.com,FR,2026-01-01T00:00:00Z"


def test_spark_agrees_with_the_reference_on_the_customer_files(customer_landing, customer_silver):
    _, reasons, applied = customer_silver
    expected = expected_state(customer_landing)
    assert {(f, n, r) for (f, n), r in reasons.items() if r} == expected.customer_rejects
    assert set(applied) == set(expected.customers)
    for customer_id, wanted in expected.customers.items():
        assert {k: applied[customer_id][k] for k in ("name", "email", "country")} == {k: wanted[k] for k in ("name", "email", "country")}


# --- LandingZone.lines ---------------------------------------------------------------------------


def test_lines_split_on_line_feed_only_and_hand_back_the_bytes_of_a_line_that_is_not_utf8(tmp_path):
    data = codecs.BOM_UTF8 + "a\u2028b\u2029c\x85d\re\r\n\r\n \n\xff".encode("utf-8").replace(b"\xc3\xbf", b"\xff") + b"\nlast\r\r"
    land(tmp_path, f"orders/{DAY}/x.jsonl", data)
    zone = LandingZone(str(tmp_path))
    (file,) = zone.files("orders")
    assert list(zone.lines(file)) == [(1, "a\u2028b\u2029c\x85d\re"), (4, b"\xff"), (5, "last\r")]
