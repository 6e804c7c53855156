"""A hand-written peer of `lakehouse refresh` for silver.orders and gold.daily_sales.

What the lakehouse does in Bronze, Silver and Gold for these two tables, written directly: DuckDB
reads the order landing files, applies the landing contract's validation rules
(docs/landing-contract.md) in SQL, keeps per order_id the valid event with the highest lsn (ties:
the one delivered last, greatest (_source_file, line number)), drops deletes, aggregates
daily_sales, and pyiceberg writes both tables into a SQL catalog (SQLite) of its own:

    python benchmarks/peer.py LANDING_DIR WAREHOUSE_DIR [--json]

WAREHOUSE_DIR gets `catalog.db` (catalog name `peer`) and the table files. It is a full rebuild
from every landing file, every time, with no incremental state: a baseline for a full refresh of
these two tables. Not done (the lakehouse does these, the peer does not): Bronze copies and
their registry, customers, the rejects tables (the peer only counts the rejects), customer_summary,
the dbt models, data-quality checks, write-audit-publish branches, watermarks, Dagster runs.

Where SQL cannot express a rule exactly, Python does it, for only the rows or files that need it
(each place is marked "Python:" below):
- gzip: DuckDB's read_blob does not decompress, and its gzip-reading read_csv cannot return a file's
  physical lines (it ends a line at a lone CR too, and has no line numbers), so Python's zlib
  decompresses `.jsonl.gz` files; DuckDB reads the
  plain files itself (read_blob). Everything after that (decoding, line splitting, the rules) is SQL.
- a file that is not valid UTF-8 as a whole: DuckDB's decode() accepts or refuses a whole value, so
  Python splits such a file into lines; its UTF-8 lines go back to the SQL rules, the others are
  `not_utf8`.
- strict JSON: a regular expression (RE2) checks lines that are one flat JSON object (members whose
  values are strings without a backslash, numbers, true, false, null), which is every valid line of
  the sample, and extracts each member's exact text; DuckDB's own JSON functions are no use here,
  since json_valid accepts trailing commas and NaN and json_extract reformats numbers
  (12345678.90 -> 12345678.9). A line the expression refuses (nested values, escapes, one of the
  fields named twice, or invalid JSON) is parsed in Python by a strict RFC 8259 parser (json with
  NaN refused, plus the contract's limits: unpaired surrogates, 64 levels, 16 MiB). Then the same
  SQL rules run on both.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import re
import sys
import time
import uuid
import zlib
from pathlib import Path

import duckdb
import pyarrow as pa

FIELDS = ("lsn", "op", "order_id", "customer_id", "status", "amount", "currency", "created_at", "updated_at")
SUFFIXES = (".jsonl", ".jsonl.gz")
MAX_RECORD_BYTES = 16 * 1024 * 1024
MAX_JSON_DEPTH = 64
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)

# --- RE2 patterns (DuckDB string literals do not process backslashes) -----------------------------
_WS = r"[ \t\n\r]*"
_STR = r'"[^"\\\x00-\x1f]*"'  # a string without escapes or raw control characters
_NUM = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?"
_VAL = f"(?:{_STR}|{_NUM}|true|false|null)"
_MEMBER = f"{_STR}{_WS}:{_WS}{_VAL}"
# One JSON object of scalar members, strictly as RFC 8259 writes it, nothing around it but JSON
# white space. RE2's $ is the end of the text (no trailing line terminator accepted).
FLAT_OBJECT = f"^{_WS}\\{{{_WS}(?:{_MEMBER}(?:{_WS},{_WS}{_MEMBER})*)?{_WS}\\}}{_WS}$"
# Python's str.isspace(), which the contract's "white space in the Unicode sense" is (reference.py
# tests `not text.strip()`).
BLANK = r"[\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]*"
TIMESTAMP = r"^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"


def _member(name: str) -> str:
    """The value token of member ``name`` of a line FLAT_OBJECT accepted. In such a line every `"`
    delimits a string, so `{` or `,`, then `"name"`, then `:` is that member and nothing else. (No
    leading `.*` to find the last occurrence: RE2 extracts a capture by running its slow NFA over
    the whole match, 9x slower here; a repeated name sends the line to Python, see REPEATED.)"""
    return rf'[{{,]{_WS}"{name}"{_WS}:{_WS}("[^"]*"|[^ \t\n\r,}}]+)'


# A line where one of the fields' names occurs twice (the last one counts: Python's parser does that).
# No capture, so RE2 answers with its fast DFA.
REPEATED = "|".join(f'"{name}"{_WS}:.*"{name}"{_WS}:' for name in FIELDS)


def _sql_str(pattern: str) -> str:
    assert "'" not in pattern
    return f"'{pattern}'"


MACROS = f"""
CREATE OR REPLACE MACRO has_text(k) AS k IN ('string', 'number');
CREATE OR REPLACE MACRO absent(k) AS k IS NULL OR k = 'null';
CREATE OR REPLACE MACRO kind_of(v) AS CASE
    WHEN v = '' THEN NULL WHEN v[1] = '"' THEN 'string' WHEN v IN ('true', 'false', 'null') THEN v ELSE 'number' END;
CREATE OR REPLACE MACRO text_of(v) AS CASE WHEN v = '' OR v IN ('true', 'false', 'null') THEN NULL
    WHEN v[1] = '"' THEN v[2:-2] ELSE v END;
-- amount (rule 13): the value's integer digits and fraction, rounded half-up to cents in integers,
-- so that any length of text is exact: it fits decimal(18,2) when |value| < 10^16 and the rounded
-- |value| < 10^16.
CREATE OR REPLACE MACRO int_digits(t) AS ltrim(split_part(ltrim(t, '-'), '.', 1), '0');
CREATE OR REPLACE MACRO fraction(t) AS split_part(t, '.', 2);
CREATE OR REPLACE MACRO cents(t) AS TRY_CAST(coalesce(nullif(int_digits(t), ''), '0') AS HUGEINT) * 100
    + CAST(rpad(left(fraction(t), 2), 2, '0') AS INTEGER) + CASE WHEN substr(fraction(t), 3, 1) >= '5' THEN 1 ELSE 0 END;
CREATE OR REPLACE MACRO amount_fits(t) AS CASE WHEN length(int_digits(t)) > 16 THEN false
    ELSE coalesce(cents(t) < 1000000000000000000, false) END;
CREATE OR REPLACE MACRO amount_negative(t) AS starts_with(t, '-') AND regexp_matches(t, '[1-9]');
CREATE OR REPLACE MACRO amount_value(t) AS CAST(CAST(cents(t) AS DECIMAL(18, 0)) * 0.01 AS DECIMAL(18, 2));
-- timestamps (rules 16, 17): the pattern, then a real instant: a valid date (year >= 1), hour < 24,
-- minute and second < 60, offset at most 18:00; the UTC instant must stay within years 1-9999
-- (what Python's datetime, and so the reference, can hold).
CREATE OR REPLACE MACRO ts_parts(t) AS regexp_extract(t, {_sql_str(TIMESTAMP)}, ['y', 'mo', 'd', 'h', 'mi', 's', 'f', 'z']);
CREATE OR REPLACE MACRO ts_micros(p) AS CASE
    WHEN p.y = '' OR CAST(p.y AS INTEGER) < 1 OR CAST(p.mo AS INTEGER) NOT BETWEEN 1 AND 12 OR CAST(p.d AS INTEGER) < 1
      OR CAST(p.h AS INTEGER) > 23 OR CAST(p.mi AS INTEGER) > 59 OR CAST(p.s AS INTEGER) > 59 THEN NULL
    WHEN CAST(p.d AS INTEGER) > day(last_day(make_date(CAST(p.y AS INTEGER), CAST(p.mo AS INTEGER), 1))) THEN NULL
    WHEN p.z <> 'Z' AND (CAST(substr(p.z, 2, 2) AS INTEGER) > 18 OR CAST(substr(p.z, 5, 2) AS INTEGER) > 59
      OR (substr(p.z, 2, 2) = '18' AND substr(p.z, 5, 2) <> '00')) THEN NULL
    ELSE epoch_us(CAST(make_date(CAST(p.y AS INTEGER), CAST(p.mo AS INTEGER), CAST(p.d AS INTEGER)) AS TIMESTAMP))
      + ((CAST(p.h AS BIGINT) * 60 + CAST(p.mi AS BIGINT)) * 60 + CAST(p.s AS BIGINT)) * 1000000
      + CAST(rpad(coalesce(nullif(substr(p.f, 2), ''), '0'), 6, '0') AS BIGINT)
      - CASE WHEN p.z = 'Z' THEN 0 ELSE (CASE WHEN p.z[1] = '-' THEN -1 ELSE 1 END)
          * (CAST(substr(p.z, 2, 2) AS BIGINT) * 60 + CAST(substr(p.z, 5, 2) AS BIGINT)) * 60000000 END
    END;
-- m: ts_micros of the parts, computed once (a macro is expanded where it is used)
CREATE OR REPLACE MACRO utc_of_micros(m) AS CASE WHEN m IS NULL OR m < -62135596800000000 OR m >= 253402300800000000 THEN NULL
    ELSE CAST(make_timestamp(m) AS TIMESTAMPTZ) END;
"""

# The rules of docs/landing-contract.md for orders, in order; the first that applies is the reason.
# (Rule 1, not_utf8, and rule 2's "not valid JSON" come from reading and parsing, before this.)
REASON = """CASE
    WHEN NOT json_ok THEN 'malformed_json'
    WHEN absent(k_lsn) THEN 'missing_field:lsn'
    WHEN NOT has_text(k_lsn) OR NOT regexp_full_match(t_lsn, '-?[0-9]+') OR TRY_CAST(t_lsn AS BIGINT) IS NULL THEN 'invalid_type:lsn'
    WHEN absent(k_op) THEN 'missing_field:op'
    WHEN k_op <> 'string' OR t_op NOT IN ('c', 'u', 'd') THEN 'invalid_op'
    WHEN absent(k_order_id) OR (k_order_id = 'string' AND t_order_id = '') THEN 'missing_field:order_id'
    WHEN NOT has_text(k_order_id) THEN 'invalid_type:order_id'
    WHEN t_op = 'd' THEN NULL
    WHEN absent(k_customer_id) THEN 'missing_field:customer_id'
    WHEN absent(k_status) THEN 'missing_field:status'
    WHEN absent(k_amount) THEN 'missing_field:amount'
    WHEN absent(k_currency) THEN 'missing_field:currency'
    WHEN absent(k_created_at) THEN 'missing_field:created_at'
    WHEN absent(k_updated_at) THEN 'missing_field:updated_at'
    WHEN NOT has_text(k_customer_id) THEN 'invalid_type:customer_id'
    WHEN NOT has_text(k_status) OR t_status NOT IN ('placed', 'paid', 'shipped', 'delivered', 'cancelled') THEN 'invalid_status'
    WHEN NOT has_text(k_amount) OR NOT regexp_full_match(t_amount, '-?[0-9]+(\\.[0-9]+)?') OR NOT amount_fits(t_amount)
      THEN 'invalid_type:amount'
    WHEN amount_negative(t_amount) THEN 'negative_amount'
    WHEN NOT has_text(k_currency) OR NOT regexp_full_match(t_currency, '[A-Z]{3}') THEN 'invalid_currency'
    WHEN created_at IS NULL THEN 'invalid_timestamp:created_at'
    WHEN updated_at IS NULL THEN 'invalid_timestamp:updated_at'
END"""


# --- Python: strict JSON for the lines the flat-object expression refuses -------------------------
class _Number(str):
    """A JSON number's text exactly as written."""


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity, -Infinity


_DECODER = json.JSONDecoder(parse_float=_Number, parse_int=_Number, parse_constant=_no_constant, strict=True)
_ASCII_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?", re.ASCII)
_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean(value, depth: int) -> bool:
    """Within the nesting limit, no unpaired surrogate in any string or name (json decodes `\\uD800`
    alone to a lone surrogate), numbers of ASCII digits only."""
    if isinstance(value, dict):
        return depth <= MAX_JSON_DEPTH and all(not _SURROGATE.search(k) and _clean(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return depth <= MAX_JSON_DEPTH and all(_clean(v, depth + 1) for v in value)
    if isinstance(value, _Number):
        return _ASCII_NUMBER.fullmatch(value) is not None
    if isinstance(value, str):
        return not _SURROGATE.search(value)
    return True


def _kind_text(value) -> tuple[str, str | None]:
    if isinstance(value, _Number):
        return "number", str(value)
    if isinstance(value, str):
        return "string", value
    if value is None:
        return "null", None
    if isinstance(value, bool):
        return ("true" if value else "false"), None
    return ("object" if isinstance(value, dict) else "array"), None


def strict_members(line: str) -> dict | None:
    """The top-level members of a line that is one strictly valid JSON object, else None. The
    decoder takes only JSON white space around the value and refuses anything after it, raw control
    characters in strings, bad escapes, single quotes, comments, trailing commas and leading zeros."""
    if len(line.encode("utf-8", "surrogatepass")) > MAX_RECORD_BYTES:
        return None
    try:
        value = _DECODER.decode(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or not _clean(value, 1):
        return None
    return value


def _slow_parse(rows: list[tuple[str, int, str]]) -> pa.Table:
    columns: dict[str, list] = {"source_file": [], "line_number": [], "json_ok": []}
    for name in FIELDS:
        columns[f"k_{name}"], columns[f"t_{name}"] = [], []
    for source_file, number, line in rows:
        members = strict_members(line)
        columns["source_file"].append(source_file)
        columns["line_number"].append(number)
        columns["json_ok"].append(members is not None)
        for name in FIELDS:
            kind, text = _kind_text(members[name]) if members is not None and name in members else (None, None)
            columns[f"k_{name}"].append(kind)
            columns[f"t_{name}"].append(text)
    types = {"source_file": pa.string(), "line_number": pa.int64(), "json_ok": pa.bool_()}
    return pa.table({k: pa.array(v, type=types.get(k, pa.string())) for k, v in columns.items()})


# --- reading ----------------------------------------------------------------------------------------
def order_files(landing: Path) -> list[tuple[str, Path]]:
    """(path relative to the landing root, path) of the orders landing files, by relative path:
    files in `orders/dt=YYYY-MM-DD/` (a real date) ending in .jsonl or .jsonl.gz, not starting
    with `.` or `_`."""
    found = []
    root = Path(landing, "orders")
    if not root.is_dir():
        return found
    for folder in os.scandir(root):
        if not (folder.is_dir() and folder.name.startswith("dt=") and _DAY.fullmatch(folder.name[3:])):
            continue
        try:
            dt.date.fromisoformat(folder.name[3:])
        except ValueError:
            continue
        for entry in os.scandir(folder.path):
            if entry.is_file() and entry.name.endswith(SUFFIXES) and not entry.name.startswith((".", "_")):
                found.append((f"orders/{folder.name}/{entry.name}", Path(entry.path)))
    return sorted(found)


def _split_lines_py(source_file: str, data: bytes) -> tuple[list[tuple[str, int, str]], list[tuple[str, int, str]]]:
    """Python: the records of a file that is not UTF-8 as a whole: (UTF-8 lines, not_utf8 rejects)."""
    lines, rejects = [], []
    parts = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    if parts[-1] == b"":
        parts.pop()
    for number, raw in enumerate(parts, start=1):
        raw = raw.removesuffix(b"\r")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            rejects.append((source_file, number, "not_utf8"))
            continue
        if text.strip():
            lines.append((source_file, number, text))
    return lines, rejects


def load_lines(con: duckdb.DuckDBPyConnection, landing: Path) -> list[tuple[str, int, str]]:
    """Table `lines` (source_file, line_number, line, flat) of every record of the orders landing
    files; return the records rejected before parsing (unreadable files, not_utf8 lines)."""
    files = order_files(landing)
    rejects: list[tuple[str, int, str]] = []
    plain = [(rel, str(path)) for rel, path in files if not rel.endswith(".gz")]
    # Python: gzip (see the module docstring).
    gz_names, gz_data = [], []
    for rel, path in files:
        if rel.endswith(".gz"):
            try:
                gz_data.append(gzip.decompress(path.read_bytes()))
                gz_names.append(rel)
            except (OSError, EOFError, zlib.error):
                rejects.append((rel, 0, "unreadable_file:compression"))
    gz = pa.table({"source_file": pa.array(gz_names, pa.string()), "content": pa.array(gz_data, pa.binary())})
    names = pa.table({"filename": pa.array([p for _, p in plain], pa.string()), "source_file": pa.array([r for r, _ in plain], pa.string())})
    con.register("gz_files", gz)
    con.register("plain_names", names)
    blob_source = "SELECT n.source_file, b.content FROM read_blob($paths) b JOIN plain_names n USING (filename)" if plain else \
        "SELECT NULL::VARCHAR AS source_file, NULL::BLOB AS content WHERE false"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE files AS
        WITH raw AS ({blob_source} UNION ALL SELECT source_file, content FROM gz_files)
        SELECT source_file, content,
               content[1:2] IN ('\\xFF\\xFE'::BLOB, '\\xFE\\xFF'::BLOB) OR content[1:4] = '\\x00\\x00\\xFE\\xFF'::BLOB AS utf16_32,
               try(decode(content)) AS text
        FROM raw""",
        {"paths": [p for _, p in plain]} if plain else None,
    )
    con.unregister("gz_files")
    del gz, gz_data
    for (source_file,) in con.execute("SELECT source_file FROM files WHERE utf16_32").fetchall():
        rejects.append((source_file, 0, "unreadable_file:encoding"))
    # Python: files that are not UTF-8 as a whole, line by line.
    extra: list[tuple[str, int, str]] = []
    for source_file, content in con.execute("SELECT source_file, content FROM files WHERE NOT utf16_32 AND text IS NULL").fetchall():
        lines, bad = _split_lines_py(source_file, bytes(content))
        extra += lines
        rejects += bad
    con.register("extra_lines", pa.table({
        "source_file": pa.array([r[0] for r in extra], pa.string()),
        "line_number": pa.array([r[1] for r in extra], pa.int64()),
        "line": pa.array([r[2] for r in extra], pa.string()),
    }))
    # Only LF ends a line; a CR before it belongs to the line end; a BOM starting the file is no
    # part of the first line; a file's final LF does not start another line.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE lines AS
        WITH parts AS (
            SELECT source_file, string_split(CASE WHEN starts_with(text, chr(65279)) THEN text[2:] ELSE text END, chr(10)) AS p
            FROM files WHERE text IS NOT NULL AND NOT utf16_32),
        numbered AS (
            SELECT source_file, unnest(p) AS line, unnest(range(1, len(p) + 1)) AS line_number, len(p) AS n FROM parts),
        records AS (
            SELECT source_file, line_number::BIGINT AS line_number, CASE WHEN ends_with(line, chr(13)) THEN line[:-2] ELSE line END AS line
            FROM numbered WHERE NOT (line_number = n AND line = '')
            UNION ALL SELECT source_file, line_number, line FROM extra_lines)
        SELECT source_file, line_number, line,
               strlen(line) <= {MAX_RECORD_BYTES} AND regexp_matches(line, {_sql_str(FLAT_OBJECT)}) AS flat
        FROM records WHERE NOT regexp_full_match(line, {_sql_str(BLANK)})"""
    )
    con.unregister("extra_lines")
    con.execute("DROP TABLE files")
    return rejects


def parse_lines(con: duckdb.DuckDBPyConnection) -> int:
    """Table `parsed`: each record's JSON validity, each field's kind and exact text, and the
    timestamps' parts. Returns how many records needed the Python parser. (Each stage is a table of
    its own: DuckDB expands a macro where it is used, so a regular expression behind a column that
    a macro reads several times would run that many times.)"""
    members = ", ".join(f"regexp_extract(line, {_sql_str(_member(name))}, 1) AS v_{name}" for name in FIELDS)
    kinds = ", ".join(f"kind_of(v_{name}) AS k_{name}, text_of(v_{name}) AS t_{name}" for name in FIELDS)
    con.execute(f"UPDATE lines SET flat = false WHERE flat AND regexp_matches(line, {_sql_str(REPEATED)})")
    slow_rows = con.execute("SELECT source_file, line_number, line FROM lines WHERE NOT flat").fetchall()
    con.execute(f"CREATE OR REPLACE TEMP TABLE members AS SELECT source_file, line_number, {members} FROM lines WHERE flat")
    con.execute("DROP TABLE lines")
    con.register("slow_parsed", _slow_parse(slow_rows))
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE texts AS
        SELECT source_file, line_number, true AS json_ok, {kinds} FROM members
        UNION ALL SELECT * FROM slow_parsed"""
    )
    con.unregister("slow_parsed")
    con.execute("DROP TABLE members")
    con.execute(
        """CREATE OR REPLACE TEMP TABLE stamps AS
        SELECT *, CASE WHEN t_op <> 'd' THEN ts_parts(t_created_at) END AS created_parts,
                  CASE WHEN t_op <> 'd' THEN ts_parts(t_updated_at) END AS updated_parts
        FROM texts"""
    )
    con.execute("DROP TABLE texts")
    con.execute(
        """CREATE OR REPLACE TEMP TABLE parsed AS
        SELECT * EXCLUDE (created_parts, updated_parts), ts_micros(created_parts) AS created_micros, ts_micros(updated_parts) AS updated_micros
        FROM stamps"""
    )
    con.execute("DROP TABLE stamps")
    return len(slow_rows)


def validate(con: duckdb.DuckDBPyConnection) -> None:
    """Table `events`: every record with its reject reason (null when valid) and typed values."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE events AS
        SELECT source_file, line_number, reason,
               CASE WHEN reason IS NULL THEN CAST(t_lsn AS BIGINT) END AS lsn,
               CASE WHEN reason IS NULL THEN t_op END AS op,
               CASE WHEN reason IS NULL THEN t_order_id END AS order_id,
               CASE WHEN reason IS NULL AND t_op <> 'd' THEN t_customer_id END AS customer_id,
               CASE WHEN reason IS NULL AND t_op <> 'd' THEN t_status END AS status,
               CASE WHEN reason IS NULL AND t_op <> 'd' THEN amount_value(t_amount) END AS amount,
               CASE WHEN reason IS NULL AND t_op <> 'd' THEN t_currency END AS currency,
               CASE WHEN reason IS NULL AND t_op <> 'd' THEN created_at END AS created_at,
               CASE WHEN reason IS NULL AND t_op <> 'd' THEN updated_at END AS updated_at
        FROM (SELECT *, {REASON} AS reason
              FROM (SELECT *, utc_of_micros(created_micros) AS created_at, utc_of_micros(updated_micros) AS updated_at FROM parsed))"""
    )
    con.execute("DROP TABLE parsed")


def build(con: duckdb.DuckDBPyConnection, batch_id: str) -> tuple[pa.Table, pa.Table]:
    """(silver.orders, gold.daily_sales) as Arrow tables."""
    # Silver: per order the valid event with the highest lsn, ties to the one delivered last; a
    # delete that wins removes the order. Sorted by key, as the lakehouse keeps Silver's files.
    con.execute(
        """CREATE OR REPLACE TEMP TABLE silver AS
        SELECT order_id, customer_id, status, amount, currency, created_at, updated_at, lsn,
               source_file AS _source_file, now() AS _ingested_at, $batch AS _batch_id
        FROM (SELECT * FROM events WHERE reason IS NULL
              QUALIFY row_number() OVER (PARTITION BY order_id ORDER BY lsn DESC, source_file DESC, line_number DESC) = 1)
        WHERE op <> 'd' ORDER BY order_id""",
        {"batch": batch_id},
    )
    silver = con.sql("SELECT * FROM silver").to_arrow_table()
    gold = con.sql(
        """SELECT CAST(created_at AS DATE) AS report_date, currency, count(*)::BIGINT AS total_orders,
                  CAST(sum(amount) AS DECIMAL(18, 2)) AS total_revenue, count(DISTINCT customer_id)::BIGINT AS unique_customers
           FROM silver WHERE status <> 'cancelled' GROUP BY ALL ORDER BY report_date, currency"""
    ).to_arrow_table()
    return silver, gold


# --- writing ----------------------------------------------------------------------------------------
def _schemas():
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.transforms import IdentityTransform
    from pyiceberg.types import DateType, DecimalType, LongType, NestedField, StringType, TimestamptzType

    orders = Schema(
        NestedField(1, "order_id", StringType(), required=True),
        NestedField(2, "customer_id", StringType(), required=True),
        NestedField(3, "status", StringType(), required=True),
        NestedField(4, "amount", DecimalType(18, 2), required=True),
        NestedField(5, "currency", StringType(), required=True),
        NestedField(6, "created_at", TimestamptzType(), required=True),
        NestedField(7, "updated_at", TimestamptzType(), required=True),
        NestedField(8, "lsn", LongType(), required=True),
        NestedField(9, "_source_file", StringType(), required=True),
        NestedField(10, "_ingested_at", TimestamptzType(), required=True),
        NestedField(11, "_batch_id", StringType(), required=True),
        identifier_field_ids=[1],
    )
    daily = Schema(
        NestedField(1, "report_date", DateType(), required=True),
        NestedField(2, "currency", StringType(), required=True),
        NestedField(3, "total_orders", LongType(), required=True),
        NestedField(4, "total_revenue", DecimalType(18, 2), required=True),
        NestedField(5, "unique_customers", LongType(), required=True),
        identifier_field_ids=[1, 2],
    )
    daily_spec = PartitionSpec(PartitionField(source_id=1, field_id=1000, transform=IdentityTransform(), name="report_date"))
    return orders, daily, daily_spec


def peer_catalog(warehouse: Path):
    from pyiceberg.catalog.sql import SqlCatalog

    warehouse = Path(warehouse).resolve()
    warehouse.mkdir(parents=True, exist_ok=True)
    return SqlCatalog("peer", uri=f"sqlite:///{warehouse / 'catalog.db'}", warehouse=warehouse.as_uri())


def write(warehouse: Path, silver: pa.Table, gold: pa.Table) -> None:
    """Replace silver.orders and gold.daily_sales in the peer's catalog, one commit each."""
    orders_schema, daily_schema, daily_spec = _schemas()
    catalog = peer_catalog(warehouse)
    for namespace, name, schema, spec, data in (
        ("silver", "orders", orders_schema, None, silver),
        ("gold", "daily_sales", daily_schema, daily_spec, gold),
    ):
        catalog.create_namespace_if_not_exists(namespace)
        identifier = f"{namespace}.{name}"
        if catalog.table_exists(identifier):
            catalog.drop_table(identifier)
        table = catalog.create_table(identifier, schema=schema, **({"partition_spec": spec} if spec else {}))
        table.append(data.cast(table.schema().as_arrow()))


# --- the whole peer ------------------------------------------------------------------------------------
def connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # report_date is the UTC day; Arrow gets tz=UTC
    con.execute(MACROS)
    return con


def run_peer(landing: Path, warehouse: Path) -> dict:
    """Build the peer's silver.orders and gold.daily_sales from every landing file; return counts
    and the seconds of each phase."""
    timings: dict[str, float] = {}
    started = last = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        timings[name] = round(now - last, 3)
        last = now

    con = connect()
    lap("connect")
    early_rejects = load_lines(con, Path(landing))
    lap("read and split lines")
    slow = parse_lines(con)
    lap("parse JSON")
    validate(con)
    lap("validate")
    records, rejected = con.execute("SELECT count(*), count(reason) FROM events").fetchone()
    reasons = dict(con.execute("SELECT reason, count(*) FROM events WHERE reason IS NOT NULL GROUP BY reason").fetchall())
    for _, _, reason in early_rejects:  # an unreadable file is one record (line 0), as in Bronze
        reasons[reason] = reasons.get(reason, 0) + 1
    counts = {"records": records + len(early_rejects), "rejected": rejected + len(early_rejects)}
    silver, gold = build(con, f"peer-{uuid.uuid4()}")
    lap("winners and daily_sales")
    con.close()
    write(Path(warehouse), silver, gold)
    lap("iceberg write")
    return {
        **counts, "python_parsed": slow, "reasons": dict(sorted(reasons.items())), "silver_rows": silver.num_rows,
        "daily_sales_rows": gold.num_rows, "timings": timings, "seconds": round(time.perf_counter() - started, 3),
    }


def reject_set(landing: Path) -> set[tuple[str, int, str]]:
    """(source_file, line number, reason) of every rejected order record (for the checks)."""
    con = connect()
    rejects = set(load_lines(con, Path(landing)))
    parse_lines(con)
    validate(con)
    rejects |= set(con.execute("SELECT source_file, line_number, reason FROM events WHERE reason IS NOT NULL").fetchall())
    con.close()
    return rejects


def validate_texts(texts: list[str]) -> list[dict]:
    """Each record text's reason (None: valid) and typed values, through the same SQL and Python as
    a file's lines (for the rule checks)."""
    con = connect()
    con.register("given", pa.table({"line": pa.array(texts, pa.string())}))
    con.execute(
        f"""CREATE TEMP TABLE lines AS SELECT 'f' AS source_file, row_number() OVER ()::BIGINT AS line_number, line,
               strlen(line) <= {MAX_RECORD_BYTES} AND regexp_matches(line, {_sql_str(FLAT_OBJECT)}) AS flat FROM given"""
    )
    parse_lines(con)
    validate(con)
    got = {r["line_number"]: r for r in con.sql("SELECT * FROM events").to_arrow_table().to_pylist()}
    con.close()
    return [got[i + 1] for i in range(len(texts))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("landing", type=Path, help="landing root (holding orders/dt=YYYY-MM-DD/)")
    parser.add_argument("warehouse", type=Path, help="folder for the peer's catalog.db and tables")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = parser.parse_args()
    result = run_peer(args.landing, args.warehouse)
    if args.json:
        print(json.dumps(result))
        return
    print(f"peer: {result['records']:,} order records ({result['rejected']:,} rejected, {result['python_parsed']:,} parsed in Python), "
          f"silver.orders {result['silver_rows']:,} rows, gold.daily_sales {result['daily_sales_rows']:,} rows, {result['seconds']:.2f} s")
    for name, seconds in result["timings"].items():
        print(f"  {name:<26} {seconds:7.2f} s")
    print(f"  catalog: sqlite:///{Path(args.warehouse).resolve() / 'catalog.db'} (name 'peer')")


if __name__ == "__main__":
    sys.exit(main())
