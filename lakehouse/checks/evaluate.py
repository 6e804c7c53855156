"""Evaluate a table's expectations against one write: the rows it wrote and the snapshot it made.

Row rules read only the rows the write produced (the write already holds them); table rules use
snapshot summaries or one projected column, never a second full scan of the table.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.contracts.expectations import Expectation
from lakehouse.contracts.model import TableContract
from lakehouse.contracts.sensitive import mask_value
from lakehouse.io.write_audit import AuditInput, CheckOutcome

SAMPLE_SIZE = 5
# The setting behind a reject_rate expectation without its own max_rate (Settings.reject_rate_limit).
REJECT_RATE_SETTING = "LAKEHOUSE_REJECT_RATE_LIMIT"
REJECT_FILES_SHOWN = 3


def evaluate(contract: TableContract, audit: AuditInput) -> list[CheckOutcome]:
    from lakehouse.checks.expect import expectations_for

    return [_evaluate_one(contract, e, audit) for e in expectations_for(contract)]


def describe(e: Expectation) -> str:
    cols = ", ".join(e.columns)
    return {
        "not_null": f"no nulls in {cols}",
        "unique": f"({cols}) is unique",
        "accepted_values": f"{cols} in {list(e.values)}",
        "range": f"{cols} within [{e.min if e.min is not None else '-inf'}, {e.max if e.max is not None else 'inf'}]",
        "sql": f"every row satisfies: {e.sql}",
        "relationship": f"{cols} exists in {e.to_table}.{e.to_column}",
        "row_count_change": f"row count falls by at most {e.max_drop:.0%} per write" if e.max_drop is not None else "row count change",
        "freshness": f"newest {cols} at most {e.max_age_hours} h old",
        "reject_rate": f"at most {e.max_rate:.0%} of records read are rejected" if e.max_rate is not None else "reject rate within the configured limit",
    }[e.kind]


def _failing_rows(contract: TableContract, data: pa.Table, condition_sql: str) -> tuple[int, list]:
    """Rows of ``data`` violating a SQL condition (NULL counts as a violation), with sample keys."""
    if data.num_rows == 0:
        return 0, []
    columns = list(contract.primary_key) or data.column_names
    key = ", ".join(f'"{k}"' for k in columns)
    con = duckdb.connect()
    try:
        con.register("written", data)
        where = f"NOT coalesce(({condition_sql}), false)"
        count = con.execute(f"SELECT count(*) FROM written WHERE {where}").fetchone()[0]
        rows = con.execute(f"SELECT {key} FROM written WHERE {where} LIMIT {SAMPLE_SIZE}").fetchall()
    finally:
        con.close()
    return count, [_shown(contract, columns, r) for r in rows]


def _shown(contract: TableContract, columns: list[str], values) -> str:
    """One sample row's values (its key, or the whole row without one) as the check shows them:
    values of a pii column masked (a sample is metadata anyone who sees the asset can read)."""
    masked = [mask_value(contract, c, v) for c, v in zip(columns, values)]
    return str(masked if len(masked) > 1 else masked[0])


def _evaluate_one(contract: TableContract, e: Expectation, audit: AuditInput) -> CheckOutcome:
    data = audit.written
    meta: dict = {}
    failing = 0
    sample: list = []
    if e.kind == "not_null":
        failing, sample = _failing_rows(contract, data, " AND ".join(f'"{c}" IS NOT NULL' for c in e.columns))
    elif e.kind == "accepted_values":
        values = ", ".join("'" + v.replace("'", "''") + "'" for v in e.values)
        failing, sample = _failing_rows(contract, data, f'"{e.columns[0]}" IS NULL OR "{e.columns[0]}" IN ({values})')
        meta["accepted_values"] = list(e.values)
    elif e.kind == "range":
        col = f'"{e.columns[0]}"'
        parts = [f"{col} IS NULL"]
        bounds = [f"{col} >= {e.min}"] if e.min is not None else []
        bounds += [f"{col} <= {e.max}"] if e.max is not None else []
        failing, sample = _failing_rows(contract, data, f"{parts[0]} OR ({' AND '.join(bounds) or 'true'})")
        meta["threshold"] = {"min": e.min, "max": e.max}
    elif e.kind == "sql":
        try:
            failing, sample = _failing_rows(contract, data, e.sql)
        except duckdb.Error as exc:
            # A broken expectation is the contract's fault, not the data's: name it and its SQL.
            raise ValueError(
                f"expectation {e.check_name!r} of table {contract.name!r} is not valid SQL over the table's columns "
                f"({e.sql!r}): {str(exc).splitlines()[0]}; fix it in the table contract"
            ) from exc
        meta["expression"] = e.sql
    elif e.kind == "unique":
        failing, sample = _duplicates(contract, e, audit)
    elif e.kind == "relationship":
        if audit.lookup is not None and data.num_rows:
            known = audit.lookup(e.to_table, e.to_column)
            values = data[e.columns[0]]
            missing = pc.and_(pc.is_valid(values), pc.invert(pc.is_in(values, value_set=known)))
            failing = pc.sum(missing).as_py() or 0
            sample = [_shown(contract, [e.columns[0]], [v]) for v in pc.unique(values.filter(missing)).to_pylist()[:SAMPLE_SIZE]]
    elif e.kind == "row_count_change":
        before, after = audit.row_count_before, audit.row_count_after
        meta.update(rows_before=before or 0, rows_after=after, threshold=e.max_drop)
        if before:
            drop = (before - after) / before
            meta["change"] = round((after - before) / before, 4)
            failing = int(drop > e.max_drop) * (before - after)
    elif e.kind == "freshness":
        column = data[e.columns[0]] if data.num_rows else None
        newest = pc.max(column).as_py() if column is not None else None
        if newest is not None:
            age = (dt.datetime.now(dt.UTC) - newest).total_seconds() / 3600
            meta.update(newest=mask_value(contract, e.columns[0], newest.isoformat()), age_hours=round(age, 1), threshold=e.max_age_hours)
            failing = int(age > e.max_age_hours)
    elif e.kind == "reject_rate":
        failing, description = _reject_rate(e, audit, meta)
        meta["failing_count"] = failing
        return CheckOutcome(e.check_name, failing == 0, e.severity, description, meta)
    meta["failing_count"] = failing
    if sample:
        meta["failing_sample"] = sample
    return CheckOutcome(e.check_name, failing == 0, e.severity, describe(e), meta)


def _percent(share: float) -> str:
    return f"{share * 100:.2f}".rstrip("0").rstrip(".") + "%"


def _reject_rate(e: Expectation, audit: AuditInput, meta: dict) -> tuple[int, str]:
    """(1 if the rate is over the limit else 0, a description giving the rate, the limit, where the
    limit is set and, when over it, the files with the most rejects)."""
    configured = e.max_rate is None
    limit = audit.reject_rate_limit if configured else e.max_rate
    meta["threshold"] = limit
    if configured:
        meta["limit_setting"] = REJECT_RATE_SETTING
    if not audit.records_read:
        return 0, f"{describe(e)}: no records read"
    rejected = audit.records_rejected or 0
    rate = rejected / audit.records_read
    meta.update(records_read=audit.records_read, records_rejected=rejected, rate=round(rate, 4))
    where = f"{REJECT_RATE_SETTING}={limit:g}" if configured else "the table contract's own limit"
    measured = f"{rejected} of {audit.records_read} records rejected ({_percent(rate)})"
    if rate <= limit:
        return 0, f"{describe(e)}: {measured}, limit {_percent(limit)} ({where})"
    description = f"{describe(e)}: {measured}, over the limit of {_percent(limit)} ({where})"
    files = (audit.reject_files() or [])[:REJECT_FILES_SHOWN] if audit.reject_files is not None else []
    if files:
        meta["top_reject_files"] = [{"file": name, "rejects": count} for name, count in files]
        description += "; most rejects in " + ", ".join(f"{name} ({count})" for name, count in files)
    return 1, description


def _duplicates(contract: TableContract, e: Expectation, audit: AuditInput) -> tuple[int, list]:
    """Keys held by more than one row. For a merge only the keys it wrote can be duplicated, so
    only they are counted, against the new snapshot's key column."""
    if len(e.columns) == 1 and audit.key_column is not None:
        written = pc.unique(audit.written[e.columns[0]]) if audit.written.num_rows else pa.array([], audit.written.schema.field(e.columns[0]).type)
        if len(written) == 0:
            return 0, []
        keys = audit.key_column(written)
        counts = pa.table({"k": keys.filter(pc.is_in(keys, value_set=written.cast(keys.type)))}).group_by("k").aggregate([("k", "count")])
        dup = counts.filter(pc.greater(counts["k_count"], 1))
    else:
        if audit.written.num_rows == 0:
            return 0, []
        counts = audit.written.group_by(list(e.columns)).aggregate([(e.columns[0], "count")])
        dup = counts.filter(pc.greater(counts[f"{e.columns[0]}_count"], 1))
    shown = dup.slice(0, SAMPLE_SIZE).select(list(e.columns) if audit.key_column is None else ["k"]).to_pylist()
    sample = [str({c: mask_value(contract, c, v) for c, v in zip(e.columns, row.values())}) for row in shown]
    return dup.num_rows, sample
