"""Plain-Python oracle for the landing contract (docs/landing-contract.md).

Reads a landing directory with the standard library only and computes what silver and gold must
hold, independently of the Spark implementation. Each order's winner is chosen over all of its
events at once, so the result does not depend on the order files are processed in; an incremental
merge has to arrive at the same state.
"""

from __future__ import annotations

import csv
import gzip
import re
import zlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
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


# --- strict JSON (RFC 8259), written out here rather than taken from the json module --------------
MAX_JSON_DEPTH = 64  # the record's object is level 1
MAX_RECORD_BYTES = 16 * 1024 * 1024
_WS = re.compile(r"[ \t\n\r]*")  # JSON white space, and nothing else
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_JSON_STRING = re.compile(r'"([^"\\\x00-\x1f]*+(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*+)*+)"')
_JSON_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|(.))")
_SIMPLE_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class _NotJson(ValueError):
    pass


@dataclass(frozen=True)
class _Member:
    """A top-level member: its kind (string, number, true, false, null, object, array) and text
    (the string itself, or the JSON exactly as written for anything else)."""

    kind: str
    text: str

    @property
    def has_text(self) -> bool:
        return self.kind in ("string", "number")


def _string(s: str, i: int) -> tuple[str, int]:
    m = _JSON_STRING.match(s, i)
    if not m:
        raise _NotJson(f"bad string at {i}")
    body = m[1]
    if "\\" in body:
        body = _JSON_ESCAPE.sub(lambda e: chr(int(e[1], 16)) if e[1] else _SIMPLE_ESCAPES[e[2]], body)
        try:  # \u escapes of a surrogate pair make one character; an unpaired surrogate is none
            body = body.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
        except UnicodeDecodeError:
            raise _NotJson("unpaired surrogate") from None
    return body, m.end()


def _value(s: str, i: int, depth: int) -> tuple[str, int]:
    """(kind, end) of the JSON value starting at s[i]; ``depth`` is the level it would open."""
    c = s[i : i + 1]
    if c in ("{", "["):
        if depth > MAX_JSON_DEPTH:
            raise _NotJson("nested too deep")
        close = "}" if c == "{" else "]"
        i = _WS.match(s, i + 1).end()
        if s.startswith(close, i):
            return ("object" if c == "{" else "array"), i + 1
        while True:
            if c == "{":
                _, i = _string(s, i)
                i = _WS.match(s, i).end()
                if not s.startswith(":", i):
                    raise _NotJson(f"expected : at {i}")
                i = _WS.match(s, i + 1).end()
            _, i = _value(s, i, depth + 1)
            i = _WS.match(s, i).end()
            if s.startswith(close, i):
                return ("object" if c == "{" else "array"), i + 1
            if not s.startswith(",", i):
                raise _NotJson(f"expected , or {close} at {i}")
            i = _WS.match(s, i + 1).end()
    if c == '"':
        return "string", _string(s, i)[1]
    for literal in ("true", "false", "null"):
        if s.startswith(literal, i):
            return literal, i + len(literal)
    m = _JSON_NUMBER.match(s, i)
    if m:
        return "number", m.end()
    raise _NotJson(f"no JSON value at {i}")


def json_members(text: str) -> dict[str, _Member] | None:
    """The top-level members of a line that is one JSON object, or None if it is not one (strict
    RFC 8259, the contract's limits; a repeated name: the last one counts)."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_RECORD_BYTES:
        return None
    try:
        i = _WS.match(text).end()
        if not text.startswith("{", i):
            return None
        members: dict[str, _Member] = {}
        i = _WS.match(text, i + 1).end()
        if text.startswith("}", i):
            i += 1
        else:
            while True:
                name, i = _string(text, i)
                i = _WS.match(text, i).end()
                if not text.startswith(":", i):
                    return None
                start = i = _WS.match(text, i + 1).end()
                kind, i = _value(text, i, 2)
                members[name] = _Member(kind, _string(text, start)[0] if kind == "string" else text[start:i])
                i = _WS.match(text, i).end()
                if text.startswith("}", i):
                    i += 1
                    break
                if not text.startswith(",", i):
                    return None
                i = _WS.match(text, i + 1).end()
    except _NotJson:
        return None
    return members if _WS.match(text, i).end() == len(text) else None


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
        return local.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def validate_order_line(text: str) -> tuple[dict | None, str | None]:
    """(event, None) for a valid order record, else (None, reason); checks in contract order.

    A valid event has lsn, op and order_id, plus for op c/u: customer_id, status, amount
    (Decimal, 2 places, half-up), currency, created_at and updated_at (UTC datetimes).
    """
    obj = json_members(text)
    if obj is None:
        return None, "malformed_json"

    def missing(name: str) -> bool:
        return name not in obj or obj[name].kind == "null"

    def text_of(name: str) -> str | None:
        """The member's text; None for a boolean, object or array, which have none."""
        return obj[name].text if obj[name].has_text else None

    if missing("lsn"):
        return None, "missing_field:lsn"
    lsn = text_of("lsn")
    if lsn is None or not _LSN.fullmatch(lsn) or len(lsn.lstrip("-").lstrip("0")) > 19 or not -(2**63) <= int(lsn) < 2**63:
        return None, "invalid_type:lsn"
    if missing("op"):
        return None, "missing_field:op"
    op = obj["op"].text if obj["op"].kind == "string" else None
    if op not in ("c", "u", "d"):
        return None, "invalid_op"
    if missing("order_id") or (obj["order_id"].kind == "string" and obj["order_id"].text == ""):
        return None, "missing_field:order_id"
    order_id = text_of("order_id")
    if order_id is None:
        return None, "invalid_type:order_id"
    event = {"lsn": int(lsn), "op": op, "order_id": order_id}
    if op == "d":
        return event, None
    for name in ORDER_REQUIRED:
        if missing(name):
            return None, f"missing_field:{name}"
    customer_id = text_of("customer_id")
    if customer_id is None:
        return None, "invalid_type:customer_id"
    status = text_of("status")
    if status not in ORDER_STATUSES:
        return None, "invalid_status"
    amount = text_of("amount")
    if amount is None or not _AMOUNT.fullmatch(amount):
        return None, "invalid_type:amount"
    value = Decimal(amount)
    if abs(value) >= Decimal(10) ** 16 or abs(value.quantize(CENT, ROUND_HALF_UP)) >= Decimal(10) ** 16:  # no decimal(18,2)
        return None, "invalid_type:amount"
    if value < 0:
        return None, "negative_amount"
    currency = text_of("currency")
    if currency is None or not _CURRENCY.fullmatch(currency):
        return None, "invalid_currency"
    created_at = parse_timestamp(text_of("created_at") or "")
    if created_at is None:
        return None, "invalid_timestamp:created_at"
    updated_at = parse_timestamp(text_of("updated_at") or "")
    if updated_at is None:
        return None, "invalid_timestamp:updated_at"
    event.update(customer_id=customer_id, status=status, amount=value.quantize(CENT, ROUND_HALF_UP),
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
    if len(rows) != 1 or len(rows[0]) != 5 or _bare_quote(text):
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


def _bare_quote(text: str) -> bool:
    """A quote inside an unquoted field, which RFC 4180 does not allow (the csv module reads it as text)."""
    i = 0
    while True:
        if text.startswith('"', i):  # quoted: up to the quote that is not doubled
            i += 1
            while True:
                i = text.find('"', i)
                if i < 0:
                    return False  # unterminated: csv.reader has refused it already
                if not text.startswith('"', i + 1):
                    break
                i += 2
            i += 1
        else:
            end = text.find(",", i)
            if '"' in text[i : len(text) if end < 0 else end]:
                return True
            i = len(text) if end < 0 else end
        if i >= len(text):
            return False
        i += 1  # the comma (or whatever csv.reader accepted after a closing quote)


def landing_files(landing: Path, source: str) -> list[Path]:
    """The files of `source` ("orders" or "customers"), ordered by path relative to `landing`."""
    found = [
        path
        for folder in Path(landing, source).glob("dt=*")
        if folder.is_dir() and _is_day(folder.name[3:])
        for path in folder.iterdir()
        if path.is_file() and path.name.endswith(SUFFIXES[source]) and not path.name.startswith((".", "_"))
    ]
    return sorted(found, key=lambda path: path.relative_to(landing).as_posix())


def _is_day(text: str) -> bool:
    try:
        return re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) is not None and date.fromisoformat(text) is not None
    except ValueError:
        return False


def file_reason(path: Path) -> str | None:
    """Why a landing file is quarantined whole (None when it is readable): gzip that does not
    decompress, or a UTF-16/UTF-32 byte order mark."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return "unreadable_file:compression"
    if data.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):
        return "unreadable_file:encoding"
    return None


def read_lines(path: Path) -> list[tuple[str, bool]]:
    """The physical lines of a (possibly gzipped) file, without line terminators, each with whether
    it is not UTF-8. Only LF ends a line, a CR before it goes with it, a UTF-8 BOM starting the file
    is not part of the first line. A line that is not UTF-8 is written as Bronze keeps it: each
    backslash doubled, each byte that is not part of valid UTF-8 as \\xhh."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    data = data.removeprefix(b"\xef\xbb\xbf")
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    out = []
    for line in lines:
        line = line.removesuffix(b"\r")
        try:
            out.append((line.decode("utf-8"), False))
        except UnicodeDecodeError:
            # surrogateescape maps each undecodable byte to U+DC80..U+DCFF: written out here as \xhh
            text = line.decode("utf-8", "surrogateescape").replace("\\", "\\\\")
            out.append(("".join(f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF else c for c in text), True))
    return out


def _records(landing: Path, source: str) -> Iterator[tuple[str, int, str, str | None, str | None]]:
    """(source_file, line number, text, header, reason set before validation: not_utf8 or a
    whole file's unreadable_file:*) of every record."""
    for path in landing_files(landing, source):
        source_file = path.relative_to(landing).as_posix()
        whole = file_reason(path)
        if whole is not None:
            yield source_file, 0, "", None, whole
            continue
        lines = read_lines(path)
        header = None
        if source == "customers" and lines:
            header = lines[0][0] if not lines[0][1] else ""  # a header that is not UTF-8 is no header
        for number, (text, not_utf8) in enumerate(lines, start=1):
            if (header is not None and number == 1) or not text.strip():
                continue
            yield source_file, number, text, header, "not_utf8" if not_utf8 else None


def iter_records(landing: Path, source: str) -> Iterator[tuple[str, int, str, str | None]]:
    """(source_file, line_number, text, header) of every record, files in path order.

    `header` is the file's first line for customers (it is not a record) and None for orders.
    `text` is the record's `_raw`.
    """
    for source_file, number, text, header, _ in _records(landing, source):
        yield source_file, number, text, header


def _winners(expected: Expected, landing: Path, source: str, validate, key: str, sequence: str, rejects: set) -> dict[str, dict]:
    """Count a source's records, file its rejects, and return per key the valid record with the
    highest ``sequence``, ties to the one delivered last, keys in sorted order."""
    best: dict[str, tuple[tuple, dict]] = {}
    expected.bronze_counts[source] = 0
    for source_file, number, text, header, preset in _records(landing, source):
        expected.bronze_counts[source] += 1
        record, reason = (None, preset) if preset else validate(text, header)
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


# ---- the dbt models ---------------------------------------------------------------------------
def _month(moment: datetime) -> date:
    return moment.astimezone(UTC).date().replace(day=1)


def expected_dbt_models(expected: Expected) -> dict[str, set[tuple]]:
    """The dbt models (lakehouse/dbt/models/gold) computed from the expected Silver tables: model -> rows."""
    status_daily: dict[tuple, list] = defaultdict(lambda: [0, Decimal(0)])
    first_month: dict[str, date] = {}
    for order in expected.orders.values():
        row = status_daily[(order["created_at"].astimezone(UTC).date(), order["status"])]
        row[0] += 1
        row[1] += order["amount"]
        month = _month(order["created_at"])
        first_month[order["customer_id"]] = min(month, first_month.get(order["customer_id"], month))
    fulfilment: dict[date, list] = defaultdict(lambda: [0, 0, 0])
    for (day, status), (count, _) in status_daily.items():
        fulfilment[day][0] += count
        fulfilment[day][1] += count if status == "delivered" else 0
        fulfilment[day][2] += count if status == "cancelled" else 0
    cohorts: dict[tuple, dict] = defaultdict(lambda: {"customers": set(), "orders": 0, "revenue": Decimal(0)})
    for order in expected.orders.values():
        cohort, month = first_month[order["customer_id"]], _month(order["created_at"])
        cell = cohorts[(cohort, month)]
        cell["customers"].add(order["customer_id"])
        cell["orders"] += 1
        cell["revenue"] += order["amount"] if order["status"] != "cancelled" else 0
    return {
        "order_status_daily": {(d, s, n, r.quantize(CENT, ROUND_HALF_UP)) for (d, s), (n, r) in status_daily.items()},
        "order_fulfilment_daily": {(d, n, dl, c, c / n) for d, (n, dl, c) in fulfilment.items()},
        "customer_cohorts": {
            (c, m, (m.year - c.year) * 12 + m.month - c.month, len(v["customers"]), len(v["customers"] & set(expected.customers)), v["orders"],
             v["revenue"].quantize(CENT, ROUND_HALF_UP))
            for (c, m), v in cohorts.items()
        },
    }
