"""Plain-Python oracle for the landing contract (docs/landing-contract.md).

Reads a landing directory with the standard library only and computes what silver and gold must
hold, independently of the Spark implementation. Each order's winner is chosen over all of its
events at once, so the result does not depend on the order files are processed in; an incremental
merge has to arrive at the same state.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

ORDER_STATUSES = frozenset({"placed", "paid", "shipped", "delivered", "cancelled"})
ORDER_REQUIRED = ("customer_id", "status", "amount", "currency", "created_at", "updated_at")
CUSTOMER_HEADER = "customer_id,name,email,country,updated_at"
SUFFIXES = {"orders": (".jsonl", ".jsonl.gz"), "customers": (".csv",)}
CENT = Decimal("0.01")

_LSN = re.compile(r"-?[0-9]+")
_AMOUNT = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_CURRENCY = re.compile(r"[A-Z]{3}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+", re.ASCII)  # \s as in Java: ASCII white space
_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?(Z|[+-][0-9]{2}:[0-9]{2})"
)


@dataclass
class Expected:
    """The lakehouse state a landing directory must produce."""

    orders: dict[str, dict] = field(default_factory=dict)
    order_rejects: set[tuple[str, int, str]] = field(default_factory=set)
    customers: dict[str, dict] = field(default_factory=dict)
    customer_rejects: set[tuple[str, int, str]] = field(default_factory=set)
    daily_sales: dict[tuple[date, str], dict] = field(default_factory=dict)
    customer_summary: dict[str, dict] = field(default_factory=dict)
    bronze_counts: dict[str, int] = field(default_factory=dict)


class _Number:
    """A JSON number, kept as its literal text."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _text(value) -> str:
    """A value's text: the string itself, or the JSON literal of anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, _Number):
        return value.text
    return json.dumps(value, default=lambda number: number.text)


def parse_timestamp(text: str) -> datetime | None:
    """The UTC instant of an ISO-8601 timestamp with an offset, or None if it is not one."""
    m = _TIMESTAMP.fullmatch(text)
    if not m:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    micros = int((m[7] or "").ljust(6, "0"))
    zone = m[8]
    offset = timedelta(0)
    if zone != "Z":
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 18 or minutes > 59 or (hours == 18 and minutes):  # java.time.ZoneOffset limits
            return None
        offset = (1 if zone[0] == "+" else -1) * timedelta(hours=hours, minutes=minutes)
    try:
        local = datetime(year, month, day, hour, minute, second, micros, tzinfo=timezone(offset))
        return local.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None


def validate_order_line(text: str) -> tuple[dict | None, str | None]:
    """(event, None) for a valid order record, else (None, reason); checks in contract order.

    A valid event has lsn, op and order_id, plus for op c/u: customer_id, status, amount
    (Decimal, 2 places, half-up), currency, created_at and updated_at (UTC datetimes).
    """
    try:
        obj = json.loads(text, parse_int=_Number, parse_float=_Number, parse_constant=_reject_constant)
    except ValueError:
        return None, "malformed_json"
    if not isinstance(obj, dict):
        return None, "malformed_json"

    def missing(name: str) -> bool:
        return obj.get(name) is None

    if missing("lsn"):
        return None, "missing_field:lsn"
    if isinstance(obj["lsn"], bool) or not _LSN.fullmatch(_text(obj["lsn"])) or not -(2**63) <= int(_text(obj["lsn"])) < 2**63:
        return None, "invalid_type:lsn"
    if missing("op"):
        return None, "missing_field:op"
    op = obj["op"]
    if not isinstance(op, str) or op not in ("c", "u", "d"):
        return None, "invalid_op"
    if missing("order_id") or obj["order_id"] == "":
        return None, "missing_field:order_id"
    event = {"lsn": int(_text(obj["lsn"])), "op": op, "order_id": _text(obj["order_id"])}
    if op == "d":
        return event, None
    for name in ORDER_REQUIRED:
        if missing(name):
            return None, f"missing_field:{name}"
    status = _text(obj["status"])
    if status not in ORDER_STATUSES:
        return None, "invalid_status"
    amount = obj["amount"]
    if isinstance(amount, bool) or not _AMOUNT.fullmatch(_text(amount)):
        return None, "invalid_type:amount"
    value = Decimal(_text(amount))
    if abs(value.quantize(CENT, ROUND_HALF_UP)) >= Decimal(10) ** 16:  # does not fit decimal(18,2)
        return None, "invalid_type:amount"
    if value < 0:
        return None, "negative_amount"
    currency = _text(obj["currency"])
    if not _CURRENCY.fullmatch(currency):
        return None, "invalid_currency"
    created_at = parse_timestamp(_text(obj["created_at"]))
    if created_at is None:
        return None, "invalid_timestamp:created_at"
    updated_at = parse_timestamp(_text(obj["updated_at"]))
    if updated_at is None:
        return None, "invalid_timestamp:updated_at"
    event.update(customer_id=_text(obj["customer_id"]), status=status, amount=value.quantize(CENT, ROUND_HALF_UP),
                 currency=currency, created_at=created_at, updated_at=updated_at)
    return event, None


def validate_customer_row(text: str) -> tuple[dict | None, str | None]:
    """(row, None) for a valid customer record (not the header), else (None, reason).

    The row has customer_id, name, email, country (empty -> None) and updated_at (UTC datetime).
    """
    try:
        rows = list(csv.reader([text], strict=True))
    except csv.Error:
        return None, "malformed_csv"
    if len(rows) != 1 or len(rows[0]) != 5:
        return None, "malformed_csv"
    customer_id, name, email, country, updated_at = rows[0]
    if not customer_id:
        return None, "missing_field:customer_id"
    if not updated_at:
        return None, "missing_field:updated_at"
    moment = parse_timestamp(updated_at)
    if moment is None:
        return None, "invalid_timestamp:updated_at"
    if email and not _EMAIL.fullmatch(email):
        return None, "invalid_email"
    if country and not _COUNTRY.fullmatch(country):
        return None, "invalid_country"
    return {"customer_id": customer_id, "name": name or None, "email": email or None,
            "country": country or None, "updated_at": moment}, None


def landing_files(landing: Path, source: str) -> list[Path]:
    """The files of `source` ("orders" or "customers"), ordered by path relative to `landing`."""
    found = [
        path
        for folder in Path(landing, source).glob("dt=*")
        if folder.is_dir()
        for path in folder.iterdir()
        if path.is_file() and path.name.endswith(SUFFIXES[source]) and not path.name.startswith((".", "_"))
    ]
    return sorted(found, key=lambda path: path.relative_to(landing).as_posix())


def read_lines(path: Path) -> list[str]:
    """The physical lines of a (possibly gzipped) UTF-8 file, without line terminators."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    lines = data.decode("utf-8", errors="replace").split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def iter_records(landing: Path, source: str) -> Iterator[tuple[str, int, str, str | None]]:
    """(source_file, line_number, text, header) of every record, files in path order.

    `header` is the file's first line for customers (it is not a record) and None for orders.
    """
    for path in landing_files(landing, source):
        source_file = path.relative_to(landing).as_posix()
        lines = read_lines(path)
        header = lines[0] if source == "customers" and lines else None
        for number, text in enumerate(lines, start=1):
            if (header is not None and number == 1) or not text.strip():
                continue
            yield source_file, number, text, header


def _winners(expected: Expected, landing: Path, source: str, validate, key: str, sequence: str, rejects: set) -> dict[str, dict]:
    """Count a source's records, file its rejects, and return per key the valid record with the
    highest ``sequence``, ties to the one delivered last, keys in sorted order."""
    best: dict[str, tuple[tuple, dict]] = {}
    expected.bronze_counts[source] = 0
    for source_file, number, text, header in iter_records(landing, source):
        expected.bronze_counts[source] += 1
        record, reason = validate(text, header)
        if reason:
            rejects.add((source_file, number, reason))
            continue
        rank = (record[sequence], source_file, number)
        if record[key] not in best or rank > best[record[key]][0]:
            best[record[key]] = (rank, record)
    return {k: record for k, (_, record) in sorted(best.items())}


def expected_state(landing: Path) -> Expected:
    landing = Path(landing)
    expected = Expected()

    orders = _winners(expected, landing, "orders", lambda text, header: validate_order_line(text), "order_id", "lsn", expected.order_rejects)
    for order_id, event in orders.items():
        if event["op"] != "d":
            expected.orders[order_id] = {k: v for k, v in event.items() if k not in ("op", "order_id")}

    def customer(text, header):
        return validate_customer_row(text) if header == CUSTOMER_HEADER else (None, "malformed_csv")

    customers = _winners(expected, landing, "customers", customer, "customer_id", "updated_at", expected.customer_rejects)
    for customer_id, row in customers.items():
        expected.customers[customer_id] = {k: v for k, v in row.items() if k != "customer_id"}

    sales: dict[tuple[date, str], dict] = {}
    for order in expected.orders.values():
        if order["status"] == "cancelled":
            continue
        day = sales.setdefault((order["created_at"].date(), order["currency"]),
                               {"total_orders": 0, "total_revenue": Decimal(0), "customers": set()})
        day["total_orders"] += 1
        day["total_revenue"] += order["amount"]
        day["customers"].add(order["customer_id"])
    expected.daily_sales = {
        key: {"total_orders": day["total_orders"], "total_revenue": day["total_revenue"].quantize(CENT, ROUND_HALF_UP),
              "unique_customers": len(day["customers"])}
        for key, day in sorted(sales.items())
    }

    orders_by_customer: dict[str, list[dict]] = {customer_id: [] for customer_id in expected.customers}
    for order in expected.orders.values():
        orders_by_customer.setdefault(order["customer_id"], []).append(order)
    for customer_id, orders in sorted(orders_by_customer.items()):
        profile = expected.customers.get(customer_id, {})
        revenue = sum((order["amount"] for order in orders if order["status"] != "cancelled"), Decimal(0))
        expected.customer_summary[customer_id] = {
            "name": profile.get("name"), "email": profile.get("email"), "country": profile.get("country"),
            "order_count": len(orders), "total_revenue": revenue.quantize(CENT, ROUND_HALF_UP),
        }
    return expected
