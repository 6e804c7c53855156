"""Deterministic sample data for the landing zone (see docs/landing-contract.md).

`land_sample` writes order CDC events (JSON lines, partly gzipped) and customer rows (CSV) that
exercise every rule of the contract: inserts, updates, deletes, re-inserts after a delete, a late
file whose older events must not regress newer state, a re-delivered file, cancelled orders,
several currencies and UTC offsets, blank lines and invalid records of every reject reason.

Invalid records are rationed: a landing day (a `dt=` folder) holds at most one invalid order record
per VALID_PER_INVALID valid ones, and the same for customer rows, so the day's reject rate stays
under 4% (the Silver reject-rate gate's default limit is 5%). A day too small to carry one of each
reason carries the next ones in turn, so over several days every reason occurs; a large day carries
them all. A day with fewer valid order records than VALID_PER_INVALID carries no invalid order
record: the first day below about 20 orders per day, and every day below about 8 (at 5 or 6 orders
per day the sample has no invalid order records at all). A customer file always has enough rows.

Day `i` is generated from an RNG seeded with `(seed, i)` and from the state left by days before it,
so a longer run writes exactly the same files for the first days plus new ones. Landing files are
immutable: an existing file with identical bytes is skipped, one with different bytes is an error.
"""

from __future__ import annotations

import csv
import errno
import gzip
import io
import json
import os
import random
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

CURRENCIES = ("EUR", "USD", "GBP")
OFFSETS = ("Z", "+00:00", "+01:00", "-05:00", "+05:30")
NEXT_STATUS = {"placed": "paid", "paid": "shipped", "shipped": "delivered"}
CUSTOMER_HEADER = "customer_id,name,email,country,updated_at"
FIRST_NAMES = ("Anna", "Ben", "Chloé", "David", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jonas")
LAST_NAMES = ("Smith", "Müller", "Dubois", "García", "Okafor", "Rossi", "Jensen", "O'Brien")
NICKNAMES = ("Ace", "Doc", "Red")
COUNTRIES = ("DE", "FR", "GB", "US", "NL", "ES")
# no "T", no offset, offset without colon, no such day, no such hour, not a timestamp at all
BAD_TIMESTAMPS = ("2026-01-01 10:00:00Z", "2026-01-01T10:00:00", "2026-01-01T10:00:00+0100",
                  "2026-02-30T10:00:00Z", "2026-01-01T24:00:00+01:00", "yesterday")
_ABSENT = object()  # marks a field left out of an invalid record
# A landing day holds at most one invalid record per this many valid ones (per source): at most
# 1/26 = 3.85% of its records are rejected.
VALID_PER_INVALID = 25


def land_sample(landing: Path, *, seed: int = 7, days: int = 3, orders_per_day: int = 40,
                start: date = date(2026, 1, 1)) -> list[Path]:
    """Write `days` days of sample data under `landing`; return the files newly written."""
    if not 5 <= orders_per_day <= 500_000:
        # lsn = day * 1,000,000 + event number: more events per day would overlap the next day's
        raise ValueError("orders_per_day must be between 5 and 500000")
    landing = Path(landing)
    sim = _Simulation(seed)
    files: list[tuple[str, bytes]] = []  # (path relative to landing, content)
    for i in range(days):
        today, next_day = sim.run_day(i, start + timedelta(days=i), orders_per_day)
        files += today + (next_day if i + 1 < days else [])
    pending = []
    for rel, data in files:  # check every file before writing any
        path = landing / rel
        if not path.exists():
            pending.append((path, data))
        elif path.read_bytes() != data:
            raise FileExistsError(errno.EEXIST, "landing file exists with other content", str(path))
    for path, data in pending:
        _write_atomically(path, data)
    return [path for path, _ in pending]


class _Simulation:
    """The source system: live orders and customers, carried from one day to the next."""

    def __init__(self, seed: int):
        self.seed = seed
        self.orders: dict[str, dict] = {}  # live order_id -> customer_id, status, amount, currency, day
        self.order_ids: list[str] = []  # every order id ever created, for O(1) random picks
        self.created_at: dict[str, str] = {}  # order_id -> created_at text of its latest insert
        self.customers: dict[str, tuple[str, str, str]] = {}  # customer_id -> name, email, country
        self.customer_ids: list[str] = []  # the keys of `customers`, for O(1) random picks
        self.deleted: list[str] = []  # deleted order ids, oldest first, candidates for re-insert
        self.protected: set[str] = set()  # scenario orders that random changes leave alone
        self.order_count = self.customer_count = 0
        # where the rotation through the invalid records continues on the next day
        self.next_invalid_order = self.next_invalid_customer = 0
        self.carried = 0  # valid order records of the day before that land in today's folder (late, resend)

    def run_day(self, i: int, day: date, orders_per_day: int):
        """Return (files landing on `day`, files of `day` that land the day after)."""
        rng = random.Random(f"lakehouse-sample:{self.seed}:{i}")
        tag, next_day = f"{self.seed}-{day:%Y%m%d}", day + timedelta(days=1)
        customers = self._customers_csv(rng, i, day, orders_per_day)
        main, late = self._order_lines(rng, i, day, self._plan_orders(rng, i, orders_per_day))
        # every line so far is a valid record, as are those of yesterday's files landing today
        allowed = (len(main) + self.carried) // VALID_PER_INVALID
        invalid, self.next_invalid_order = _rotate(self._invalid_orders(rng, i, day), self.next_invalid_order, allowed)
        for bad in invalid:
            main.insert(rng.randint(0, len(main)), bad)
        for blank in ("", "   "):
            main.insert(rng.randint(1, len(main) - 1), blank)
        late.insert(rng.randint(1, len(late) - 1), "\t")
        part1, part2 = main[: len(main) // 2], main[len(main) // 2 :]
        rejected = set(invalid)
        valid1 = [line for line in part1 if line not in rejected]  # the rationed invalid lines land once
        first = rng.randrange(max(1, len(valid1) - 9))
        resend = valid1[first : first + 10]  # the same lines again, under another name
        self.carried = sum(1 for line in late + resend if line.strip())
        today = [
            (f"orders/dt={day}/orders-{tag}-1.jsonl", _lines(part1)),
            (f"orders/dt={day}/orders-{tag}-2.jsonl.gz", gzip.compress(_lines(part2), mtime=0)),
            (f"customers/dt={day}/customers-{tag}.csv", customers),
        ]
        tomorrow = [
            (f"orders/dt={next_day}/orders-{tag}-late.jsonl", _lines(late)),
            (f"orders/dt={next_day}/orders-{tag}-resend.jsonl.gz", gzip.compress(_lines(resend), mtime=0)),
        ]
        return today, tomorrow

    def _plan_orders(self, rng: random.Random, i: int, n: int) -> list[tuple]:
        """Decide the day's events in event-time order: (op, order_id, fields, goes_to_late_file)."""
        events: list[tuple] = []

        def emit(op, oid, late=False):
            fields = None if op == "d" else {k: self.orders[oid][k] for k in ("customer_id", "status", "amount", "currency")}
            events.append((op, oid, fields, late))

        def create(oid=None, late=False):
            if oid is None:
                self.order_count += 1
                oid = f"o-{self.seed}-{self.order_count:06d}"
            # an unknown customer's id has a letter where a known one's has its number: they never meet
            customer = rng.choice(self.customer_ids) if rng.random() < 0.85 else f"c-{self.seed}-x{rng.randrange(100):03d}"
            if oid not in self.orders and (not self.order_ids or self.order_ids[-1] != oid):
                self.order_ids.append(oid)
            self.orders[oid] = {"customer_id": customer, "status": rng.choice(("placed", "placed", "paid")),
                                "amount": _amount(rng), "currency": rng.choice(CURRENCIES), "day": i}
            emit("c", oid, late)
            return oid

        def update(oid, status=None, late=False):
            order = self.orders[oid]
            if status is None:
                cancel = order["status"] in ("placed", "paid") and rng.random() < 0.2
                status = "cancelled" if cancel else NEXT_STATUS[order["status"]]
            order["status"] = status
            if rng.random() < 0.1:
                order["amount"] = _amount(rng)  # price correction
            emit("u", oid, late)

        def delete(oid):
            emit("d", oid)
            del self.orders[oid]

        def pick(open_only=True, before_day=None, tries=20):
            """A random live order meeting the conditions, found by sampling (a scan per event
            would make large samples quadratic); None if none turned up."""
            for _ in range(tries if self.order_ids else 0):
                oid = rng.choice(self.order_ids)
                o = self.orders.get(oid)
                if o is not None and oid not in self.protected and (not open_only or o["status"] in NEXT_STATUS) \
                        and (before_day is None or o["day"] < before_day):
                    return oid
            return None

        def delete_any():
            if (victim := pick(open_only=False)) is not None:
                delete(victim)
                self.deleted.append(victim)

        self.protected.add(create())  # first of the day: just after 00:00 UTC, written at -05:00
        earlier = {oid for oid in (pick(before_day=i) for _ in range(3)) if oid is not None}
        for oid in sorted(earlier):  # orders from earlier days move on
            update(oid)
        for _ in range(n - 5):
            create()
            roll = rng.random()
            if roll < 0.3 and (oid := pick()) is not None:
                update(oid)
            elif roll < 0.38:
                delete_any()
        delete_any()
        if self.deleted:
            create(self.deleted.pop(0))  # re-insert after delete, usually of an earlier day's order
        # Late file: older events of orders that are updated (a) or deleted (b) afterwards, and an
        # insert (c) whose later update is delivered first. Replaying them must change nothing.
        a, b, c = create(), create(), create(late=True)
        self.protected |= {a, b, c}
        update(a, "paid", late=True)
        update(b, "paid", late=True)
        update(c)
        update(a, "cancelled")
        delete(b)
        self.protected.add(create())  # last of the day: just before 24:00 UTC, written at +01:00
        return events

    def _order_lines(self, rng: random.Random, i: int, day: date, events: list[tuple]):
        """Give events times and lsns; return (main lines, late lines)."""
        main, late = [], []
        for k, ((op, oid, fields, is_late), moment) in enumerate(zip(events, _moments(rng, day, len(events)))):
            offset = "-05:00" if k == 0 else "+01:00" if k == len(events) - 1 else rng.choice(OFFSETS)
            record = {"lsn": i * 1_000_000 + k + 1, "op": op, "order_id": oid}
            if op != "d":
                stamp = _timestamp(moment, offset)
                if op == "c":
                    self.created_at[oid] = stamp
                record.update(fields, created_at=self.created_at[oid], updated_at=stamp)
            (late if is_late else main).append(json.dumps(record))
        return main, late

    def _invalid_orders(self, rng: random.Random, i: int, day: date) -> list[str]:
        """One record per reject reason (the day lands those `_rotate` picks). Those that parse
        carry a live order id and an lsn above the day's valid events, so accepting one by mistake
        would change that order."""
        oid = rng.choice(list(self.orders))
        stamp = _timestamp(_midnight(day) + timedelta(hours=12), "Z")
        base = {"lsn": 0, "op": "u", "order_id": oid, "customer_id": self.orders[oid]["customer_id"],
                "status": "delivered", "amount": "1.00", "currency": "EUR", "created_at": stamp, "updated_at": stamp}

        def bad(k: int, **changes) -> str:
            record = dict(base, lsn=i * 1_000_000 + 900_000 + k)
            for key, value in changes.items():
                if value is _ABSENT:
                    del record[key]
                else:
                    record[key] = value
            return json.dumps(record)

        missing = (None, _ABSENT)
        return [
            bad(1)[:-1],  # malformed_json: truncated
            '["not", "an", "object"]',  # malformed_json
            bad(2, lsn=rng.choice(missing)),
            bad(3, lsn=rng.choice(("12a", 1.5, True))),
            bad(4, op=rng.choice(missing)),
            bad(5, op=rng.choice(("x", "U", "upsert"))),
            bad(6, order_id=rng.choice(("", None, _ABSENT))),
            bad(7, customer_id=rng.choice(missing)),
            bad(8, **{rng.choice(("status", "amount", "currency", "created_at", "updated_at")): rng.choice(missing)}),
            bad(9, status=rng.choice(("refunded", "PAID"))),
            bad(10, amount=rng.choice(("12,50", "abc", True))),
            bad(11, amount=rng.choice((-5.25, "-0.01"))),
            bad(12, currency=rng.choice(("eur", "EURO", "E1R"))),
            bad(13, created_at=rng.choice(BAD_TIMESTAMPS)),
            bad(14, updated_at=rng.choice(BAD_TIMESTAMPS)),
        ]

    def _customers_csv(self, rng: random.Random, i: int, day: date, orders_per_day: int) -> bytes:
        """New customers, changes to earlier ones, a stale row that must not win, invalid rows.

        A day has at least VALID_PER_INVALID valid rows, so that it can carry an invalid one."""
        earlier = list(self.customer_ids)
        rows_wanted = max(VALID_PER_INVALID, orders_per_day // 3)
        new = rows_wanted if i == 0 else max(3, rows_wanted // 3)
        changes = []
        for k in range(new):
            self.customer_count += 1
            cid = f"c-{self.seed}-{self.customer_count:04d}"
            self.customers[cid] = _profile(rng, k)
            self.customer_ids.append(cid)
            changes.append(cid)
        moved = min(rows_wanted - new - 1, len(earlier)) if earlier else 0  # - 1: the stale row
        for cid in rng.sample(earlier, moved):  # moved, and changed email provider
            name, email, _ = self.customers[cid]
            self.customers[cid] = (name, email.replace("@example.com", "@mail.example.org"), rng.choice(COUNTRIES))
            changes.append(cid)
        rows = [[cid, *self.customers[cid], _timestamp(moment, rng.choice(OFFSETS))]
                for cid, moment in zip(changes, _moments(rng, day, len(changes)))]
        if earlier:  # updated_at before anything landed for that customer
            stale = _timestamp(_midnight(day) - timedelta(days=i + 1), "Z")
            rows.append([rng.choice(earlier), "Stale Name", "stale@example.com", "ZZ", stale])
        lines = [_csv_line(row) for row in rows]
        cid, future = rng.choice(self.customer_ids), "2030-01-01T00:00:00Z"
        invalid = [
            f"{cid},Too,Many,Fields,DE,{future}",  # malformed_csv
            f",No Id,no.id@example.com,DE,{future}",  # missing_field:customer_id
            f"{cid},No Time,no.time@example.com,DE,",  # missing_field:updated_at
            f"{cid},Bad Time,bad.time@example.com,DE,{rng.choice(BAD_TIMESTAMPS)}",
            f"{cid},Bad Email,{rng.choice(('no-at.example.com', 'a@b', 'two@@example.com'))},DE,{future}",
            f"{cid},Bad Country,bad.country@example.com,{rng.choice(('de', 'DEU', 'D1'))},{future}",
        ]
        chosen, self.next_invalid_customer = _rotate(invalid, self.next_invalid_customer, len(rows) // VALID_PER_INVALID)
        for bad in (*chosen, ""):
            lines.insert(rng.randint(0, len(lines) - 1), bad)
        return _lines([CUSTOMER_HEADER, *lines])


def _rotate(records: list[str], start: int, count: int) -> tuple[list[str], int]:
    """Up to `count` of `records` (each at most once), from `start` on and around; and where the
    next day's go on from."""
    count = min(count, len(records))
    return [records[(start + j) % len(records)] for j in range(count)], (start + count) % len(records)


def _profile(rng: random.Random, k: int) -> tuple[str, str, str]:
    """(name, email, country); some names need CSV quoting, some emails/countries are empty."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    name = {0: f"{last}, {first}", 1: f'{first} "{rng.choice(NICKNAMES)}" {last}'}.get(k % 5, f"{first} {last}")
    email = "" if k % 7 == 3 else f"{first}.{last}{rng.randrange(100)}@example.com".lower().replace("'", "")
    return name, email, "" if k % 7 == 5 else rng.choice(COUNTRIES)


def _amount(rng: random.Random):
    """An amount as a JSON number or string; some have three decimals (rounded half-up)."""
    cents, kind = rng.randrange(500, 50_000), rng.random()
    if kind < 0.4:
        return cents / 100
    if kind < 0.7:
        return f"{cents / 100:.2f}"
    if kind < 0.8:
        return cents // 100
    text = f"{cents // 100}.{cents % 100:02d}5"
    return text if kind < 0.9 else float(text)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _moments(rng: random.Random, day: date, count: int) -> list[datetime]:
    """`count` increasing UTC instants spread over `day`, some with milliseconds."""
    step = 86_400_000 // (count + 1)  # milliseconds between events
    moments = []
    for k in range(count):
        ms = k * step + rng.randrange(step)
        if step >= 1000 and rng.random() >= 0.2:
            ms -= ms % 1000  # most events on whole seconds, unless the day is too full for that
        moments.append(_midnight(day) + timedelta(milliseconds=ms))
    return moments


def _timestamp(moment: datetime, offset: str) -> str:
    """ISO-8601 text of a UTC instant as seen at `offset` ("Z" or "+HH:MM")."""
    if offset != "Z":
        sign = 1 if offset[0] == "+" else -1
        moment += sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
    millis = f".{moment.microsecond // 1000:03d}" if moment.microsecond else ""
    return f"{moment:%Y-%m-%dT%H:%M:%S}{millis}{offset}"


def _csv_line(fields: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(fields)
    return buffer.getvalue().rstrip("\n")


def _lines(lines: list[str]) -> bytes:
    return "".join(f"{line}\n" for line in lines).encode("utf-8")


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
