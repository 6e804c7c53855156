"""Tests for the sample-data generator and for the plain-Python reference of the landing contract."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from lakehouse.cli import parser
from lakehouse.contracts.tables import ORDERS
from lakehouse.settings import Settings
from lakehouse.sources.sample import land_sample
from lakehouse_tests.reference import (
    expected_state,
    iter_records,
    parse_timestamp,
    validate_customer_row,
    validate_order_line,
)

ORDER_REASONS = {
    "malformed_json", "missing_field:lsn", "invalid_type:lsn", "missing_field:op", "invalid_op",
    "missing_field:order_id", "missing_field:customer_id", "invalid_status", "invalid_type:amount",
    "negative_amount", "invalid_currency", "invalid_timestamp:created_at", "invalid_timestamp:updated_at",
}
CUSTOMER_REASONS = {
    "malformed_csv", "missing_field:customer_id", "missing_field:updated_at", "invalid_timestamp:updated_at",
    "invalid_email", "invalid_country",
}


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def valid_events(landing: Path) -> list[tuple[str, int, str, dict]]:
    events = []
    for source_file, number, text, _ in iter_records(landing, "orders"):
        event, reason = validate_order_line(text)
        if reason is None:
            events.append((source_file, number, text, event))
    return events


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[Path, list[Path]]:
    """What `lakehouse land-sample` lands without options."""
    args = parser().parse_args(["land-sample"])
    landing = tmp_path_factory.mktemp("landing")
    return landing, land_sample(landing, seed=args.seed, days=args.days, orders_per_day=args.orders_per_day, start=args.start)


@pytest.fixture(scope="module")
def expected(sample):
    return expected_state(sample[0])


# --- generator -------------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes(tmp_path):
    land_sample(tmp_path / "a")
    land_sample(tmp_path / "b")
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")


def test_other_seeds_do_not_collide(tmp_path):
    land_sample(tmp_path / "7", seed=7)
    land_sample(tmp_path / "8", seed=8)
    seven, eight = expected_state(tmp_path / "7"), expected_state(tmp_path / "8")
    assert not set(seven.orders) & set(eight.orders)
    assert not set(seven.customers) & set(eight.customers)
    assert land_sample(tmp_path / "7", seed=8)  # file names carry the seed: one landing zone holds both


def test_file_layout(sample):
    landing, files = sample
    names = sorted(p.relative_to(landing).as_posix() for p in files)
    assert names == sorted(snapshot(landing))
    assert "orders/dt=2026-01-01/orders-7-20260101-1.jsonl" in names
    assert "orders/dt=2026-01-01/orders-7-20260101-2.jsonl.gz" in names
    assert "orders/dt=2026-01-02/orders-7-20260101-late.jsonl" in names
    assert "orders/dt=2026-01-02/orders-7-20260101-resend.jsonl.gz" in names
    assert "customers/dt=2026-01-03/customers-7-20260103.csv" in names
    assert not any("20260103-late" in n or "20260103-resend" in n for n in names)  # dt=2026-01-04 not generated
    for path in files:
        if path.name.endswith(".gz"):
            assert path.read_bytes()[4:8] == b"\0\0\0\0"  # gzip mtime 0


def test_rerun_writes_nothing(tmp_path):
    assert land_sample(tmp_path)
    before = snapshot(tmp_path)
    assert land_sample(tmp_path) == []
    assert snapshot(tmp_path) == before


def test_longer_run_only_adds_files(tmp_path):
    first = land_sample(tmp_path / "x", days=3)
    before = snapshot(tmp_path / "x")
    second = land_sample(tmp_path / "x", days=5)
    after = snapshot(tmp_path / "x")
    assert {k: after[k] for k in before} == before
    added = {p.relative_to(tmp_path / "x").as_posix() for p in second}
    assert added == set(after) - set(before) and not set(first) & set(second)
    assert all(name.split("/")[1] >= "dt=2026-01-04" for name in added)
    land_sample(tmp_path / "y", days=5)
    assert snapshot(tmp_path / "y") == after


def test_changed_landing_file_is_refused(tmp_path):
    files = land_sample(tmp_path, days=1)
    files[0].write_bytes(files[0].read_bytes() + b"\n")
    files[1].unlink()
    with pytest.raises(FileExistsError, match=files[0].name):
        land_sample(tmp_path, days=1)
    assert not files[1].exists()  # nothing written once a conflict is found
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]


# --- how many invalid records a sample holds ------------------------------------------------


def default_reject_rate_limit() -> float:
    """The lowest limit Silver orders' reject-rate expectations apply out of the box: their own
    max_rate, or for one without it the setting's default (not the environment's value: the test
    suite raises it)."""
    limits = [
        Settings.model_fields["reject_rate_limit"].default if e.max_rate is None else e.max_rate
        for e in ORDERS.all_expectations if e.kind == "reject_rate"
    ]
    assert limits, "silver/orders has no reject_rate expectation"
    return min(limits)


def rejected_share_per_day(landing: Path) -> dict[tuple[str, str], tuple[int, int]]:
    """(source, dt folder) -> (records rejected, records), as the reference validator sees them.
    A day's folder is what one refresh after landing that day reads."""
    state = expected_state(landing)
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for source, rejects in (("orders", state.order_rejects), ("customers", state.customer_rejects)):
        for source_file, *_ in iter_records(landing, source):
            counts[source, source_file.split("/")[1]][1] += 1
        for source_file, *_ in rejects:
            counts[source, source_file.split("/")[1]][0] += 1
    return {key: (rejected, records) for key, (rejected, records) in counts.items()}


def test_the_smallest_size_the_cli_accepts_is_five_orders_a_day(tmp_path):
    with pytest.raises(ValueError, match="orders_per_day"):
        land_sample(tmp_path, days=1, orders_per_day=4)
    assert land_sample(tmp_path, days=1, orders_per_day=5)


@pytest.mark.parametrize(
    ("days", "orders_per_day"),
    [(1, 5), (3, 5), (1, 6), (4, 7), (1, 20), (2, 20), (3, 40), (1, 200), (3, 200), (3, 500), (1, 5000)],
)
def test_every_day_stays_well_under_the_reject_rate_limit(tmp_path, days, orders_per_day):
    limit = default_reject_rate_limit()
    land_sample(tmp_path, days=days, orders_per_day=orders_per_day)
    shares = rejected_share_per_day(tmp_path)
    assert {day for _, day in shares} == {f"dt=2026-01-{d + 1:02d}" for d in range(days)}
    for (source, day), (rejected, records) in sorted(shares.items()):
        assert records > 0
        share = rejected / records
        assert share < limit, f"{source} {day}: {rejected} of {records} rejected, limit {limit:.0%}"
        assert share <= 0.04, f"{source} {day}: {rejected} of {records} rejected, not well under the limit"


@pytest.mark.parametrize(("days", "orders_per_day"), [(16, 8), (16, 10), (3, 200)])
def test_small_days_take_turns_with_the_reject_reasons(tmp_path, days, orders_per_day):
    land_sample(tmp_path, days=days, orders_per_day=orders_per_day)
    state = expected_state(tmp_path)
    assert ORDER_REASONS <= {reason for *_, reason in state.order_rejects}
    assert CUSTOMER_REASONS <= {reason for *_, reason in state.customer_rejects}


def test_at_the_smallest_size_customer_reasons_still_take_turns(tmp_path):
    # Five orders a day give too few order records for even one invalid one within the limit.
    land_sample(tmp_path, days=6, orders_per_day=5)
    assert {reason for *_, reason in expected_state(tmp_path).customer_rejects} == CUSTOMER_REASONS


# --- what a default sample contains ----------------------------------------------------------


def test_every_reject_reason_occurs_every_day(sample, expected):
    by_day = defaultdict(set)
    for source_file, _, reason in expected.order_rejects:
        by_day[source_file.split("/")[1]].add(reason)
    assert len(by_day) == 3 and all(ORDER_REASONS <= reasons for reasons in by_day.values())
    by_day.clear()
    for source_file, _, reason in expected.customer_rejects:
        by_day[source_file.split("/")[1]].add(reason)
    assert len(by_day) == 3 and all(CUSTOMER_REASONS <= reasons for reasons in by_day.values())


def test_every_record_is_accounted_for(sample, expected):
    landing, _ = sample
    assert expected.bronze_counts["orders"] == len(valid_events(landing)) + len(expected.order_rejects)
    valid_customers = sum(1 for *_, h in iter_records(landing, "customers")) - len(expected.customer_rejects)
    assert expected.bronze_counts["customers"] > valid_customers > 0
    blank = sum(1 for p in landing.rglob("*.jsonl") for line in p.read_text().split("\n")[:-1] if not line.strip())
    assert blank > 0


def test_late_file_would_regress_a_naive_merge(sample, expected):
    naive: dict[str, str] = {}
    for _, _, _, event in valid_events(sample[0]):  # files in arrival order, last event applied wins
        if event["op"] == "d":
            naive.pop(event["order_id"], None)
        else:
            naive[event["order_id"]] = event["status"]
    truth = {order_id: order["status"] for order_id, order in expected.orders.items()}
    differ = {oid for oid in naive.keys() | truth.keys() if naive.get(oid) != truth.get(oid)}
    assert any(oid in truth for oid in differ)  # regressed, e.g. cancelled -> paid
    assert any(oid not in truth for oid in differ)  # resurrected after its delete


def test_cdc_paths_are_exercised(sample, expected):
    events = valid_events(sample[0])
    ops = defaultdict(list)
    for source_file, _, _text, event in events:
        ops[event["order_id"]].append((event["lsn"], event["op"], source_file.split("/")[1]))
    assert any(json.loads(text).keys() == {"lsn", "op", "order_id"} for _, _, text, e in events if e["op"] == "d")
    reinserted = [oid for oid, seq in ops.items() if oid in expected.orders
                  and any(a[1] == "d" and b[1] == "c" and b[0] > a[0] for a in seq for b in seq)]
    assert reinserted
    assert any(  # update landing on a later day than the insert
        any(a[1] == "c" and b[1] == "u" and b[2] > a[2] for a in seq for b in seq) for seq in ops.values()
    )
    texts = defaultdict(set)
    for source_file, _, text, _ in events:
        texts[text].add(source_file)
    assert any(len(files) > 1 for files in texts.values())  # re-delivered lines
    assert any(o["status"] == "cancelled" for o in expected.orders.values())
    assert {currency for _, currency in expected.daily_sales} >= {"EUR", "USD", "GBP"}
    offsets = {json.loads(text)["created_at"][19:].lstrip(".0123456789") for _, _, text, e in events if e["op"] != "d"}
    assert {"Z", "+01:00", "-05:00"} <= offsets
    local_date_differs = [
        e for _, _, text, e in events
        if e["op"] != "d" and json.loads(text)["created_at"][:10] != e["created_at"].date().isoformat()
    ]
    assert local_date_differs
    assert sum(d["total_orders"] for d in expected.daily_sales.values()) == sum(
        o["status"] != "cancelled" for o in expected.orders.values()
    )


def test_customers_are_updated_and_referenced(sample, expected):
    rows = defaultdict(set)
    for source_file, _, text, _ in iter_records(sample[0], "customers"):
        row, reason = validate_customer_row(text)
        if reason is None:
            rows[row["customer_id"]].add(source_file)
    assert any(len(files) > 1 for files in rows.values())
    assert "Stale Name" not in {c["name"] for c in expected.customers.values()}
    summary = expected.customer_summary.values()
    assert any(s["name"] is None and s["order_count"] for s in summary)  # orders of unknown customers
    assert any(s["name"] and s["order_count"] for s in summary)
    assert any(c["email"] is None for c in expected.customers.values())
    assert any("," in c["name"] for c in expected.customers.values())
    assert any('"' in c["name"] for c in expected.customers.values())


# --- reference: unit level -------------------------------------------------------------------

GOOD = {"lsn": 5, "op": "u", "order_id": "o-1", "customer_id": "c-1", "status": "paid", "amount": "10.005",
        "currency": "EUR", "created_at": "2026-01-01T23:30:00-05:00", "updated_at": "2026-01-02T04:30:00.5Z"}
ABSENT = object()


def line(**changes) -> str:
    record = dict(GOOD)
    for key, value in changes.items():
        if value is ABSENT:
            del record[key]
        else:
            record[key] = value
    return json.dumps(record)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"lsn": 5, "op": "u"', "malformed_json"),
        ("[1, 2]", "malformed_json"),
        ('"just a string"', "malformed_json"),
        (line()[:-1] + ', "x": NaN}', "malformed_json"),
        (line(lsn=ABSENT), "missing_field:lsn"),
        (line(lsn=None), "missing_field:lsn"),
        (line(lsn=True), "invalid_type:lsn"),
        (line(lsn="12a"), "invalid_type:lsn"),
        (line(lsn=1.5), "invalid_type:lsn"),
        (line(lsn=None, op="x"), "missing_field:lsn"),  # first failing check wins
        (line(op=ABSENT), "missing_field:op"),
        (line(op="C"), "invalid_op"),
        (line(op=1), "invalid_op"),
        (line(order_id=""), "missing_field:order_id"),
        (line(order_id=None), "missing_field:order_id"),
        (line(customer_id=None), "missing_field:customer_id"),
        (line(currency=ABSENT, status="bogus"), "missing_field:currency"),
        (line(updated_at=None), "missing_field:updated_at"),
        (line(status="refunded", amount="x"), "invalid_status"),
        (line(amount=True), "invalid_type:amount"),
        (line(amount="1e3"), "invalid_type:amount"),
        (line(amount="12,50"), "invalid_type:amount"),
        (line(amount=-0.01, currency="eur"), "negative_amount"),
        (line(currency="eur"), "invalid_currency"),
        (line(currency="EUR\n"), "invalid_currency"),
        (line(created_at="2026-01-01T10:00:00"), "invalid_timestamp:created_at"),
        (line(created_at="2026-02-30T10:00:00Z"), "invalid_timestamp:created_at"),
        (line(created_at="2026-01-01T24:00:00Z"), "invalid_timestamp:created_at"),
        (line(created_at="2026-01-01T10:00:00+0100"), "invalid_timestamp:created_at"),
        (line(updated_at="2026-01-01 10:00:00Z"), "invalid_timestamp:updated_at"),
        (line(updated_at="2026-01-01T10:00:00.1234567Z"), "invalid_timestamp:updated_at"),
    ],
)
def test_order_reject_reason(text, reason):
    assert validate_order_line(text) == (None, reason)


def test_valid_order_events():
    event, reason = validate_order_line(line())
    assert reason is None
    assert event["amount"] == Decimal("10.01")  # half-up, not half-even
    assert event["created_at"] == datetime(2026, 1, 2, 4, 30, tzinfo=UTC)
    assert event["updated_at"] == datetime(2026, 1, 2, 4, 30, 0, 500000, tzinfo=UTC)
    event, _ = validate_order_line(line(lsn="-3", amount=2.675))
    assert (event["lsn"], event["amount"]) == (-3, Decimal("2.68"))  # the literal's text, not the float
    assert validate_order_line('{"lsn": 9, "op": "d", "order_id": "o-1", "amount": "junk"}') == (
        {"lsn": 9, "op": "d", "order_id": "o-1"}, None)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("c-1,Ann,ann@example.com,DE", "malformed_csv"),
        ("c-1,Ann,ann@example.com,DE,2026-01-01T00:00:00Z,x", "malformed_csv"),
        ('c-1,"Ann,ann@example.com,DE,2026-01-01T00:00:00Z', "malformed_csv"),
        (",Ann,ann@example.com,DE,2026-01-01T00:00:00Z", "missing_field:customer_id"),
        ("c-1,Ann,bad,de,", "missing_field:updated_at"),
        ("c-1,Ann,bad,de,2026-01-01", "invalid_timestamp:updated_at"),
        ("c-1,Ann,ann@example,de,2026-01-01T00:00:00Z", "invalid_email"),
        ("c-1,Ann,ann@example.com,DEU,2026-01-01T00:00:00Z", "invalid_country"),
    ],
)
def test_customer_reject_reason(text, reason):
    assert validate_customer_row(text) == (None, reason)


def test_valid_customer_row():
    row, reason = validate_customer_row('c-1,"Doe, ""J"" Jane",,,2026-01-01T01:00:00+01:00')
    assert reason is None
    assert row == {"customer_id": "c-1", "name": 'Doe, "J" Jane', "email": None, "country": None,
                   "updated_at": datetime(2026, 1, 1, tzinfo=UTC)}
    assert parse_timestamp("2026-01-01T00:00:00+19:00") is None


# --- reference: a hand-made landing zone -----------------------------------------------------


def write(landing: Path, rel: str, *lines: str) -> None:
    path = landing / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


def order(lsn, op, order_id, **fields):
    if op == "d":
        return json.dumps({"lsn": lsn, "op": op, "order_id": order_id})
    return json.dumps({"lsn": lsn, "op": op, "order_id": order_id, "customer_id": "c-1", "status": "paid",
                       "amount": "1.00", "currency": "EUR", "created_at": "2026-01-01T23:30:00-05:00",
                       "updated_at": "2026-01-02T00:00:00Z", **fields})


def test_winner_rules_and_gold(tmp_path):
    write(tmp_path, "orders/dt=2026-01-01/a.jsonl",
          order(1, "c", "o-1"), order(3, "u", "o-1", status="shipped"),  # later update wins
          order(1, "c", "o-2"), order(2, "d", "o-2"),  # deleted
          order(5, "c", "o-3", amount="2.00"),
          "", order(1, "c", "o-4", currency="USD", status="cancelled"))
    write(tmp_path, "orders/dt=2026-01-02/late.jsonl",
          order(2, "u", "o-1", status="placed"),  # older: no regression
          order(1, "u", "o-2"),  # older than the delete: no resurrection
          order(5, "u", "o-3", amount="3.00"),  # same lsn, delivered later: wins
          "   ")
    write(tmp_path, "orders/dt=2026-01-02/.hidden.jsonl", order(99, "d", "o-1"))
    write(tmp_path, "customers/dt=2026-01-01/c.csv", "customer_id,name,email,country,updated_at",
          "c-1,Ann,ann@example.com,DE,2026-01-02T00:00:00Z", "c-2,Bob,,,2026-01-01T00:00:00Z")
    write(tmp_path, "customers/dt=2026-01-02/c.csv", "customer_id,name,email,country,updated_at",
          "c-1,Old Ann,ann@example.com,DE,2026-01-01T12:00:00Z")  # older updated_at: loses
    write(tmp_path, "customers/dt=2026-01-03/c.csv", "id,name,email,country,updated_at",
          "c-3,Cy,cy@example.com,FR,2026-01-03T00:00:00Z")  # wrong header

    state = expected_state(tmp_path)
    assert {oid: (o["status"], o["amount"], o["lsn"]) for oid, o in state.orders.items()} == {
        "o-1": ("shipped", Decimal("1.00"), 3), "o-3": ("paid", Decimal("3.00"), 5), "o-4": ("cancelled", Decimal("1.00"), 1)}
    assert state.order_rejects == set()
    assert state.bronze_counts == {"orders": 9, "customers": 4}
    assert state.customers["c-1"]["name"] == "Ann" and state.customers["c-2"]["email"] is None
    assert state.customer_rejects == {("customers/dt=2026-01-03/c.csv", 2, "malformed_csv")}
    assert state.daily_sales == {
        (date(2026, 1, 2), "EUR"): {"total_orders": 2, "total_revenue": Decimal("4.00"), "unique_customers": 1}}
    assert state.customer_summary["c-1"] == {"name": "Ann", "email": "ann@example.com", "country": "DE",
                                             "order_count": 3, "total_revenue": Decimal("4.00")}
    assert state.customer_summary["c-2"]["order_count"] == 0
    assert state.customer_summary["c-2"]["total_revenue"] == Decimal("0.00")
