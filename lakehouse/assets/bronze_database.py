"""Bronze from a database: a source table's new and changed rows appended as they were read, with
their lineage, each page one batch committed with the watermark it reached (sources/postgres.py)."""


import datetime as dt
import logging
from dataclasses import dataclass, field

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.assets.transformation import TRANSIENT_RETRY_POLICY, permanent_errors_fail_at_once, table_metadata
from lakehouse.contracts.model import TableContract
from lakehouse.io.bronze_files import bronze_name, landing_day
from lakehouse.io.store_resource import TableStoreResource
from lakehouse.io.table_store import CommitStamp, TableStore
from lakehouse.sources.postgres import PostgresReader, PostgresSourceResource, PostgresTable, decode, encode

DELETE_COLUMN = "_deleted"  # true on a delete event found by a key snapshot
ROW_COLUMN = "_line_number"  # the row's 1-based position in its batch
TAIL_MAX = 50  # batches remembered for the overlap (a busier overlap re-reads some rows: Silver ignores them)


@dataclass
class ExtractReport:
    batches: list[str] = field(default_factory=list)
    rows_read: int = 0
    rows_appended: int = 0
    rows_already_in_bronze: int = 0  # read again in the overlap, dropped
    delete_events: int = 0
    key_snapshot: bool = False
    watermark: object = None
    rows_without_watermark: int = 0  # never read: reported on every extract


def _watermark_after(previous: dict | None, rows: pa.Table, table: PostgresTable, file: str, overlap, snapshot_at: str | None) -> dict:
    """The watermark once ``rows`` (in (watermark, key) order) are in Bronze as ``file``: the last
    row's position, and the batches whose rows reach into the overlap before it."""
    previous = previous or {}
    if rows.num_rows:
        last_wm, last_key = rows[table.watermark][-1].as_py(), rows[table.key][-1].as_py()
        newest = pc.max(rows[table.watermark]).as_py()
        tail = [*previous.get("tail", []), [file, encode(newest)]]
    else:
        last_wm, last_key = decode(previous.get("value"), table.watermark_kind), previous.get("key")
        tail = list(previous.get("tail", []))
    if last_wm is not None:
        floor = last_wm - overlap
        tail = [t for t in tail if decode(t[1], table.watermark_kind) >= floor][-TAIL_MAX:]
    mark = {"kind": table.watermark_kind, "value": encode(last_wm), "key": last_key, "tail": tail}
    if snapshot_at or previous.get("snapshot_at"):
        mark["snapshot_at"] = snapshot_at or previous["snapshot_at"]
    return mark


def _already_in_bronze(store: TableStore, contract: TableContract, table: PostgresTable, tail: list) -> set[tuple]:
    """(key, watermark) of the rows in the batches that reach into the overlap."""
    if not tail:
        return set()
    rows = store.read(contract, bronze_files=[t[0] for t in tail])
    return set(zip(rows[table.key].to_pylist(), rows[table.watermark].to_pylist()))


def _batch(contract: TableContract, rows: pa.Table, path: str, run_id: str, deleted: bool = False) -> pa.Table:
    n = rows.num_rows
    day = landing_day(path)
    columns = {name: rows[name] for name in rows.column_names}
    columns[DELETE_COLUMN] = pa.array([deleted] * n, pa.bool_())
    columns[ROW_COLUMN] = pa.array(range(1, n + 1), pa.int64())
    columns["_source_file"] = pa.array([path] * n, pa.large_string())
    columns["_ingested_at"] = pa.array([dt.datetime.now(dt.UTC)] * n, pa.timestamp("us", tz="UTC"))
    columns["_batch_id"] = pa.array([run_id] * n, pa.large_string())
    columns["dt"] = pa.array([day] * n, pa.date32())
    missing = [c.name for c in contract.columns if c.name not in columns]
    for name in missing:
        columns[name] = pa.nulls(n, contract.column(name).arrow_type())
    return pa.table(columns)


def extract(
    table: PostgresTable, contract: TableContract, silver: TableContract, reader: PostgresReader, store: TableStore,
    source: PostgresSourceResource, stamp: CommitStamp, log: logging.Logger, now: dt.datetime | None = None,
) -> ExtractReport:
    """Append the rows of ``table`` changed since the committed watermark (minus ``overlap``) to
    Bronze ``contract``, page by page, and the delete events of a key snapshot when one is due."""
    report = ExtractReport()
    overlap = dt.timedelta(seconds=source.overlap_seconds) if table.watermark_kind == "timestamp" else int(source.overlap_seconds)
    position = store.extract_position(contract)
    mark = position.watermark
    seen = _already_in_bronze(store, contract, table, (mark or {}).get("tail", []))
    start = decode(mark["value"], table.watermark_kind) - overlap if mark and mark.get("value") is not None else None
    after = None
    today = (now or dt.datetime.now(dt.UTC)).date()
    while True:
        page = reader.page(table, after, start, source.batch_rows)
        report.rows_read += page.num_rows
        if page.num_rows == 0:
            break
        after = (page[table.watermark][-1].as_py(), page[table.key][-1].as_py())
        if seen:
            fresh = pa.array([(k, w) not in seen for k, w in zip(page[table.key].to_pylist(), page[table.watermark].to_pylist())])
            report.rows_already_in_bronze += page.num_rows - pc.sum(fresh.cast(pa.int64())).as_py()
            new = page.filter(fresh)
        else:
            new = page
        if new.num_rows:
            path = store.extract_batch_path(contract, table.name, position, today)
            file = bronze_name(path)
            mark = _watermark_after(mark, new, table, file, overlap, None)
            result = store.append_extract(contract, _batch(contract, new, path, stamp.run_id), path, stamp, mark)
            report.rows_appended += result.rows_written
            if result.committed:
                report.batches.append(file)
                log.info(f"{contract.qualified_name}: {result.rows_written} row(s) of {table.table} appended as {file}")
            position = store.extract_position(contract)
            mark = position.watermark
        if page.num_rows < source.batch_rows:
            break
    report.watermark = (mark or {}).get("value")
    report.rows_without_watermark = reader.without_watermark(table)
    if report.rows_without_watermark:
        log.warning(f"{table.table}: {report.rows_without_watermark} row(s) have no {table.watermark} and cannot be read "
                    f"incrementally; set it on every change (NOT NULL, with a trigger)")
    if _snapshot_due(mark, source, now):
        report.key_snapshot = True
        checked_at = now or dt.datetime.now(dt.UTC)
        report.delete_events = _key_snapshot(table, contract, silver, reader, store, stamp, position, mark, today, checked_at, overlap, log)
    return report


def _snapshot_due(mark: dict | None, source: PostgresSourceResource, now: dt.datetime | None) -> bool:
    if source.key_snapshot_hours is None or not mark:
        return False
    if mark.get("kind") != "timestamp":
        return False  # a delete event needs a watermark after the row's: only instants give one
    last = mark.get("snapshot_at")
    now = now or dt.datetime.now(dt.UTC)
    return last is None or now - dt.datetime.fromisoformat(last) >= dt.timedelta(hours=source.key_snapshot_hours)


def _key_snapshot(
    table: PostgresTable, contract: TableContract, silver: TableContract, reader: PostgresReader, store: TableStore,
    stamp: CommitStamp, position, mark: dict, today: dt.date, checked_at: dt.datetime, overlap, log: logging.Logger,
) -> int:
    """Delete events for the keys Silver holds that the source no longer has, stamped with the
    server's time before the key read (later than any change the keys it read could reflect).
    ``checked_at`` (this process's clock, which decides when the next one is due) is recorded."""
    taken_at = reader.now()
    source_keys = reader.keys(table)
    held = store.column(silver, table.key)
    gone = held.filter(pc.invert(pc.is_in(held, value_set=source_keys.cast(held.type)))) if len(held) else held
    rows = pa.table({table.key: gone, table.watermark: pa.array([taken_at] * len(gone), pa.timestamp("us", tz="UTC"))})
    path = store.extract_batch_path(contract, table.name, position, today)
    file = bronze_name(path)
    marked = _watermark_after(mark, rows.slice(0, 0), table, file, overlap, checked_at.isoformat())
    result = store.append_extract(contract, _batch(contract, rows, path, stamp.run_id, deleted=True), path, stamp, marked)
    if len(gone):
        log.info(f"{contract.qualified_name}: {len(gone)} key(s) gone from {table.table}: delete events appended as {file}")
    return result.rows_written


def database_bronze_asset(table: PostgresTable, contract: TableContract, silver: TableContract) -> dg.AssetsDefinition:
    """An asset that extracts ``table``'s changes into Bronze ``contract`` (unpartitioned: the
    watermark, not a landing day, says what is new). It writes itself, page by page, rather than
    through the IO manager: each page commits with its watermark, so one output cannot carry it."""

    @dg.asset(
        key=contract.asset_key,
        description=contract.description,
        metadata=table_metadata(contract),
        kinds={"postgres", "parquet"},
        group_name=contract.layer.value,
        owners=list(contract.owners),
        tags={**contract.catalog_tags, "lakehouse/source": "postgres"},
        retry_policy=TRANSIENT_RETRY_POLICY,
    )
    def _asset(context: dg.AssetExecutionContext, postgres: PostgresSourceResource, store: TableStoreResource) -> dg.MaterializeResult:
        stamp = CommitStamp(run_id=context.run_id, asset_key=contract.asset_key.to_user_string())
        table_store = store.get_store()
        with permanent_errors_fail_at_once(), postgres.connect() as reader:
            report = extract(table, contract, silver, reader, table_store, postgres, stamp, context.log)
        info = table_store.info(contract)
        return dg.MaterializeResult(
            metadata={
                "new_batches": len(report.batches),
                "rows_read": report.rows_read,
                "rows_appended": report.rows_appended,
                "rows_already_in_bronze": report.rows_already_in_bronze,
                "delete_events": report.delete_events,
                "rows_without_watermark": report.rows_without_watermark,
                "key_snapshot": report.key_snapshot,
                "watermark": str(report.watermark),
                "dagster/row_count": info.row_count,
                "table_uri": dg.MetadataValue.path(info.uri),
                "source_table": table.table,
            },
        )

    return _asset
