"""Does the peer (benchmarks/peer.py) compute what the lakehouse computes, and what the reference says?

Compares, on the same landing data, as sets of rows:
- silver.orders on the contract columns (order_id, customer_id, status, amount, currency,
  created_at, updated_at, lsn) and gold.daily_sales (all columns), the peer's against the
  project's (read with pyiceberg from $LAKEHOUSE_HOME/catalog.db, catalog `lakehouse`);
- both, and the peer's order rejects (source file, line, reason), against
  lakehouse_tests/reference.py's expected_state (plain Python; slow at large N);
- the peer's reason and values for each edge-case line of lakehouse_tests/assets/test_validation.py
  against reference.validate_order_line.

    python benchmarks/peer_check.py                        # land 3 days x 200 orders, refresh, compare
    python benchmarks/peer_check.py --home H               # compare an existing home (landing in H/landing)
    python benchmarks/peer_check.py --rules-only
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import peer

ORDER_COLUMNS = ("order_id", "customer_id", "status", "amount", "currency", "created_at", "updated_at", "lsn")
DAILY_COLUMNS = ("report_date", "currency", "total_orders", "total_revenue", "unique_customers")


def _utc(value):
    return value.astimezone(dt.UTC) if isinstance(value, dt.datetime) else value


def rows_of(table, columns) -> set[tuple]:
    """An Arrow table's rows on ``columns`` as a set of tuples (timestamps in UTC)."""
    data = table.select(list(columns)).to_pylist()
    return {tuple(_utc(r[c]) for c in columns) for r in data}


def tables_of(catalog) -> dict[str, set[tuple]]:
    return {
        "silver.orders": rows_of(catalog.load_table("silver.orders").scan().to_arrow(), ORDER_COLUMNS),
        "gold.daily_sales": rows_of(catalog.load_table("gold.daily_sales").scan().to_arrow(), DAILY_COLUMNS),
    }


def project_catalog(home: Path):
    """The lakehouse's catalog as README's storage contract names it (environment.local_store)."""
    from pyiceberg.catalog.sql import SqlCatalog

    home = Path(home).resolve()
    return SqlCatalog("lakehouse", uri=f"sqlite:///{home / 'catalog.db'}", warehouse=(home / "warehouse").as_uri())


def project_tables(home: Path) -> dict[str, set[tuple]]:
    return tables_of(project_catalog(home))


def peer_tables(warehouse: Path) -> dict[str, set[tuple]]:
    return tables_of(peer.peer_catalog(warehouse))


def reference_tables(landing: Path) -> tuple[dict[str, set[tuple]], set[tuple]]:
    """(tables, order rejects) per lakehouse_tests/reference.py."""
    from lakehouse_tests.reference import expected_state

    expected = expected_state(Path(landing))
    orders = {
        (oid, o["customer_id"], o["status"], o["amount"], o["currency"], _utc(o["created_at"]), _utc(o["updated_at"]), o["lsn"])
        for oid, o in expected.orders.items()
    }
    daily = {(d, c, v["total_orders"], v["total_revenue"], v["unique_customers"]) for (d, c), v in expected.daily_sales.items()}
    return {"silver.orders": orders, "gold.daily_sales": daily}, set(expected.order_rejects)


def differences(name: str, left: tuple[str, set], right: tuple[str, set], show: int = 5) -> list[str]:
    """Lines describing how two row sets differ (empty when equal)."""
    (a_name, a), (b_name, b) = left, right
    if a == b:
        return []
    only_a, only_b = sorted(a - b, key=repr), sorted(b - a, key=repr)
    lines = [f"{name}: {a_name} {len(a):,} rows, {b_name} {len(b):,} rows; {len(only_a):,} only in {a_name}, {len(only_b):,} only in {b_name}"]
    lines += [f"    only in {a_name}: {r}" for r in only_a[:show]]
    lines += [f"    only in {b_name}: {r}" for r in only_b[:show]]
    return lines


def compare(named: dict[str, dict[str, set[tuple]]]) -> list[str]:
    """Every pair against the first of ``named`` (label -> tables); the lines of each difference."""
    (first, base), *others = named.items()
    problems = []
    for label, tables in others:
        for table in base:
            problems += differences(table, (first, base[table]), (label, tables[table]))
    return problems


def check_rules() -> list[str]:
    """The peer's reason and values for the edge cases of the project's validation tests, against
    reference.validate_order_line."""
    from lakehouse_tests.assets import test_validation as cases
    from lakehouse_tests.reference import validate_order_line

    texts = list(cases.ORDER_LINES) + [text for text, _ in cases.ORDER_CASES] + list(cases.VALUE_CASES.values())
    texts += [cases.raw(note='"' + "x" * (10 * 1024 * 1024) + '"'), cases.raw(note='"' + "é" * (8 * 1024 * 1024) + '"')]
    # and the peer's own: long digit strings, year limits after the offset, leap days, NUL, non-ASCII
    # digits, a repeated name (the last counts) and the same name nested (it does not)
    raw = cases.raw
    texts += [
        raw(lsn='"-0"'), raw(lsn='""'), raw(amount='"0000000000000000000000012.345"'), raw(amount='"00000000000000009999999999999999.995"'),
        raw(created_at='"0001-01-01T00:30:00+01:00"'), raw(created_at='"9999-12-31T23:30:00-01:00"'), raw(created_at='"0000-01-01T00:00:00Z"'),
        raw(created_at='"2024-02-29T00:00:00.5Z"'), raw(created_at='"2023-02-29T00:00:00Z"'), raw(customer_id='"a\x00b"'),
        '{"lsn":1,"op":"d","order_id":"x"}\x00', raw(currency='"EU\u0410"'), raw(order_id='"\u0661"'), raw(lsn='"\u0661"'),
        raw()[:-1] + ', "lsn": 6}', raw()[:-1] + ', "x": {"lsn": 7}}', raw(amount='"1.005"'), raw(amount="0.994999"),
    ]
    got = peer.validate_texts(texts)
    problems = []
    for text, row in zip(texts, got):
        event, reason = validate_order_line(text)
        if row["reason"] != reason:
            problems.append(f"rule: {text[:120]!r}: peer {row['reason']}, reference {reason}")
        elif event is not None:
            want = {k: _utc(v) for k, v in event.items()}
            have = {k: _utc(row[k]) for k in want}
            if have != want:
                problems.append(f"value: {text[:120]!r}: peer {have}, reference {want}")
    return problems


def _event(lsn, order_id, op="u", **changes) -> str:
    import json

    record = {"lsn": lsn, "op": op, "order_id": order_id, "customer_id": "c-1", "status": "paid", "amount": "10.00",
              "currency": "EUR", "created_at": "2026-01-05T23:30:00-01:00", "updated_at": "2026-01-05T10:00:00Z"}
    return json.dumps({**record, **changes} if op != "d" else {"lsn": lsn, "op": "d", "order_id": order_id})


def tricky_landing(landing: Path) -> None:
    """Landing files that exercise reading: BOM, CRLF, lone CR, Unicode blank lines, non-UTF-8
    lines, corrupt gzip, UTF-16 BOMs, an empty file, no final LF, ties on lsn across files, files
    outside the layout."""
    import gzip

    day = Path(landing, "orders", "dt=2026-01-05")
    day.mkdir(parents=True)
    lines = [
        "\ufeff".encode() + _event(1, "a").encode() + b"\r",  # BOM, then CRLF
        _event(2, "a", amount="11.00").replace(", ", ",\r").encode(),  # lone CR between tokens: JSON white space
        _event(3, "b", customer_id="c\r1").encode(),  # a raw CR inside a string: malformed
        "\u3000\u00a0\x0c".encode(),  # blank in the Unicode sense: no record
        b"\xff\xfe not utf8 " + _event(9, "a").encode(),
        _event(4, "b", amount=b"\xc3\xa9".decode()).encode() + b"\r\r",  # CR CR LF: one CR stays in the line
        _event(5, "c").encode(),
        _event(6, "d", amount="1.005").encode(),
    ]
    (day / "a.jsonl").write_bytes(b"\n".join(lines))  # no final LF
    (day / "b.jsonl.gz").write_bytes(gzip.compress(_event(7, "e").encode() + b"\n")[:-6])  # truncated gzip
    (day / "c.jsonl").write_bytes("\ufeff".encode("utf-16-le") + _event(8, "f").encode("utf-16-le"))
    (day / "d.jsonl.gz").write_bytes(gzip.compress(b"\xff\xfe" + _event(8, "g").encode()))
    (day / "e.jsonl").write_bytes(b"")
    (day / "f.jsonl").write_bytes((_event(10, "h", amount="1.00") + "\n" + _event(10, "h", amount="2.00") + "\n").encode())
    (day / "g.jsonl.gz").write_bytes(gzip.compress((_event(10, "h", amount="3.00") + "\n" + _event(11, "c", op="d") + "\n\n").encode()))
    for ignored in ("_tmp.jsonl", ".part.jsonl", "x.json", "y.JSONL"):
        (day / ignored).write_text(_event(99, "z") + "\n")
    Path(landing, "orders", "dt=2026-13-45").mkdir()
    Path(landing, "orders", "dt=2026-13-45", "z.jsonl").write_text(_event(99, "z") + "\n")
    Path(landing, "orders", "top.jsonl").write_text(_event(99, "z") + "\n")


def check_files(tmp: Path) -> list[str]:
    """The peer against the reference on tricky landing files (no lakehouse run)."""
    landing = Path(tmp) / "tricky" / "landing"
    tricky_landing(landing)
    peer.run_peer(landing, Path(tmp) / "tricky" / "peer")
    tables, rejects = reference_tables(landing)
    problems = compare({"reference": tables, "peer": peer_tables(Path(tmp) / "tricky" / "peer")})
    return problems + differences("order rejects (tricky files)", ("reference", rejects), ("peer", peer.reject_set(landing)))


def run(cmd: list[str], env: dict) -> str:
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out.stdout


def lakehouse_env(home: Path) -> dict:
    return {**os.environ, "LAKEHOUSE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}


def check_home(home: Path, peer_warehouse: Path, reference: bool = True) -> list[str]:
    """Run the peer on the home's landing zone and compare it with the home's tables (and the reference)."""
    landing = Path(home) / "landing"
    result = peer.run_peer(landing, peer_warehouse)
    print(f"peer: {result['records']:,} records, {result['rejected']:,} rejected, silver.orders {result['silver_rows']:,}, "
          f"gold.daily_sales {result['daily_sales_rows']:,} ({result['seconds']:.1f} s)")
    named = {"project": project_tables(home), "peer": peer_tables(peer_warehouse)}
    problems = []
    if reference:
        started = time.perf_counter()
        named["reference"], reference_rejects = reference_tables(landing)
        problems += differences("order rejects", ("reference", reference_rejects), ("peer", peer.reject_set(landing)))
        print(f"reference: {time.perf_counter() - started:.1f} s")
    problems = compare(named) + problems
    if reference:
        problems += differences("silver.orders", ("reference", named["reference"]["silver.orders"]), ("peer", named["peer"]["silver.orders"]))
    for label, tables in named.items():
        print(f"  {label:<10} silver.orders {len(tables['silver.orders']):>9,} rows   gold.daily_sales {len(tables['gold.daily_sales']):>5,} rows")
    return list(dict.fromkeys(problems))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, help="an existing LAKEHOUSE_HOME, already refreshed (default: a new small one)")
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--orders-per-day", type=int, default=200)
    parser.add_argument("--rules-only", action="store_true")
    parser.add_argument("--no-reference", action="store_true", help="skip reference.expected_state (slow at large N)")
    args = parser.parse_args()
    problems = check_rules()
    print(f"rules: {'peer agrees with reference.validate_order_line on every edge case' if not problems else f'{len(problems)} difference(s)'}")
    with tempfile.TemporaryDirectory(prefix="peer-check-") as tmp:
        files = check_files(Path(tmp))
        print(f"files: {'peer agrees with the reference on the tricky landing files' if not files else f'{len(files)} difference(s)'}")
        problems += files
    if not args.rules_only:
        with tempfile.TemporaryDirectory(prefix="peer-check-") as tmp:
            home = args.home
            if home is None:
                home = Path(tmp) / "home"
                env = lakehouse_env(home)
                lakehouse = [sys.executable, "-m", "lakehouse.cli"]
                run([*lakehouse, "land-sample", "--days", str(args.days), "--orders-per-day", str(args.orders_per_day)], env)
                started = time.perf_counter()
                run([*lakehouse, "refresh"], env)
                print(f"lakehouse refresh of {args.days} days x {args.orders_per_day} orders: {time.perf_counter() - started:.1f} s")
            problems += check_home(home, Path(tmp) / "peer", reference=not args.no_reference)
    for line in problems:
        print(line)
    agree = "peer and reference agree" if args.rules_only else "peer, project and reference agree"
    print(f"OK: {agree}" if not problems else f"MISMATCH: {len(problems)} problem line(s) above")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
