"""Bronze: every landed record appended once, as raw text with its lineage, partitioned by landing day."""


import datetime as dt
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import dagster as dg
import pyarrow as pa

from lakehouse.assets.transformation import IO_MANAGER_KEY, TRANSIENT_RETRY_POLICY, permanent_errors_fail_at_once, table_metadata
from lakehouse.contracts.model import TableContract
from lakehouse.contracts.tables import CUSTOMERS_RAW, ORDERS_RAW
from lakehouse.io.bronze_files import BATCH_SOURCES_KEY, landing_key
from lakehouse.io.store_resource import TableStoreResource
from lakehouse.sources.landing import (
    CUSTOMER_HEADER,
    LandingFile,
    LandingZone,
    LandingZoneResource,
    UnreadableFileError,
    split_customer_row,
)

RecordReader = Callable[[LandingZone, LandingFile], Iterable[dict]]


NOT_UTF8 = "not_utf8"


def raw_text(line: str | bytes) -> tuple[str, str | None]:
    """``(_raw, _parse_error)`` of a landed line: a line that is valid UTF-8 is its own text; the
    bytes of one that is not are kept reversibly, each backslash doubled and each byte that is not
    part of valid UTF-8 written ``\\xhh`` (docs/landing-contract.md), and it is marked ``not_utf8``."""
    if isinstance(line, str):
        return line, None
    return line.replace(b"\\", b"\\\\").decode("utf-8", errors="backslashreplace"), NOT_UTF8


def order_records(zone: LandingZone, file: LandingFile) -> Iterable[dict]:
    for number, line in zone.lines(file):
        text, error = raw_text(line)
        yield {"_raw": text, "_parse_error": error, "_line_number": number}


# RFC 4180 quoting: a field is unquoted and holds no quote, or is quoted with its inner quotes
# doubled. The csv module also takes a quote inside an unquoted field as text; the contract does not
# (such a quote is typically the rest of a quoted field that held a line break).
_FIELD = r'(?:"(?:[^"]++|"")*+"|[^",]*+)'
_CSV_ROW = re.compile(rf"{_FIELD}(?:,{_FIELD})*+\r?")


def customer_row(line: str) -> tuple[list[str | None] | None, str | None]:
    """The five customer fields of one CSV line (empty -> None), or the reason it can't be split."""
    fields, error = split_customer_row(line)
    if error is None and not _CSV_ROW.fullmatch(line):
        return None, "malformed_csv"
    return fields, error


def customer_records(zone: LandingZone, file: LandingFile) -> Iterable[dict]:
    header_ok = None
    for number, line in zone.lines(file):
        text, error = raw_text(line)
        if number == 1:  # the first physical line is the header, not a record
            header_ok = text == ",".join(CUSTOMER_HEADER) and error is None
            continue
        header_ok = bool(header_ok)  # a blank or missing first line: no valid header
        fields = None
        if error is None:
            fields, error = customer_row(text) if header_ok else (None, "malformed_csv")
        record = dict(zip(CUSTOMER_HEADER, fields or [None] * len(CUSTOMER_HEADER)))
        yield {**record, "_parse_error": error, "_raw": text, "_line_number": number}


@dataclass
class LandingBatch:
    """What a Bronze run read: its records, and the files it could not read."""

    data: pa.Table
    # landing file -> why, for files quarantined whole (one record each: see read_landing)
    unreadable: dict[str, str] = field(default_factory=dict)
    # landing file -> why, for files left for a later run (an error that may pass: not recorded)
    retry: dict[str, str] = field(default_factory=dict)

    @property
    def sources(self) -> list[str]:
        """The landing files the batch records as ingested (those read, whole or quarantined)."""
        return sorted(set(self.data["_source_file"].to_pylist()) | set(self.unreadable))


def unreadable_record(error: UnreadableFileError) -> dict:
    """The one record of a landing file that cannot be read: no line of it is kept (those read
    before a truncation might be the file's beginning, or garbage), so it is quarantined whole with
    ``reason`` as its ``_parse_error``, line 0 (the whole file), and no text."""
    return {"_raw": "", "_parse_error": error.reason, "_line_number": 0}


def read_landing(
    contract: TableContract, zone: LandingZone, files: list[LandingFile], reader: RecordReader, batch_id: str
) -> LandingBatch:
    """The records of ``files`` as one Arrow table in the Bronze contract's schema. A file that
    cannot be read as its kind promises becomes one quarantined record; one whose reading failed
    for another reason (permission denied, a storage error) is left out for a later run."""
    ingested_at = dt.datetime.now(dt.UTC)
    columns: dict[str, list] = {name: [] for name in contract.column_names}
    batch = LandingBatch(data=None)  # type: ignore[arg-type]
    for file in files:
        try:
            records = list(reader(zone, file))  # the whole file first: none of it or all of it
        except UnreadableFileError as exc:
            batch.unreadable[file.relative_path] = exc.detail
            records = [unreadable_record(exc)]
        except (PermissionError, FileNotFoundError, IsADirectoryError) as exc:
            batch.retry[file.relative_path] = f"{type(exc).__name__}: {exc}"
            continue
        for record in records:
            for name in contract.column_names:
                if name not in _LINEAGE:
                    columns[name].append(record.get(name))
            columns["_source_file"].append(file.relative_path)
            columns["_ingested_at"].append(ingested_at)
            columns["_batch_id"].append(batch_id)
            columns["dt"].append(file.dt)
    batch.data = pa.Table.from_pydict(columns, schema=contract.arrow_schema)
    return batch


_LINEAGE = ("_source_file", "_ingested_at", "_batch_id", "dt")


def read_landing_files(
    contract: TableContract, zone: LandingZone, files: list[LandingFile], reader: RecordReader, batch_id: str
) -> pa.Table:
    """All records of ``files`` as one Arrow table in the Bronze contract's schema."""
    return read_landing(contract, zone, files, reader, batch_id).data


def landing_problems(
    zone: LandingZone, source: str, days: set[dt.date], files: list[LandingFile], ingested_sizes: dict[str, int | None]
) -> dict[str, dict[str, str]]:
    """What a Bronze run reports besides what it reads: files it never reads (misnamed folders,
    other suffixes) and files whose size changed since they were ingested (landing files are
    immutable: an appended line is never read, so it is said)."""
    changed = {
        f.relative_path: f"{ingested_sizes[f.relative_path]} bytes when ingested, {f.size} now"
        for f in files
        if ingested_sizes.get(f.relative_path) is not None and f.size is not None and f.size != ingested_sizes[f.relative_path]
    }
    return {
        "ignored": {i.relative_path: i.reason for i in zone.ignored(source, days)},
        "changed_after_ingestion": changed,
    }


LANDING_CHECK = "landing_files_readable"
PROBLEMS_LISTED = 50  # files named per kind in the metadata; the counts are complete


def bronze_asset(
    contract: TableContract, source: str, reader: RecordReader, partitions_def: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    """An asset, partitioned by landing day, that appends the landing files of its days not yet in
    ``contract``'s table. A range of days runs as one run (single-run backfill)."""

    @dg.asset(
        key=contract.asset_key,
        description=contract.description,
        metadata=table_metadata(contract),
        kinds={"parquet"},
        group_name=contract.layer.value,
        io_manager_key=IO_MANAGER_KEY,
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        owners=list(contract.owners),
        tags={**contract.catalog_tags, "lakehouse/source": source},
        retry_policy=TRANSIENT_RETRY_POLICY,
        check_specs=[
            dg.AssetCheckSpec(
                LANDING_CHECK,
                asset=contract.asset_key,
                description="Every landing file of the run's days was read: none unreadable (quarantined whole), "
                "left for a later run, outside the layout (never read) or changed after its ingestion",
            )
        ],
    )
    def _asset(context: dg.AssetExecutionContext, landing: LandingZoneResource, store: TableStoreResource):
        days = {dt.date.fromisoformat(key) for key in context.partition_keys}
        with permanent_errors_fail_at_once():
            zone = landing.zone()
            table_store = store.get_store()
            done = table_store.ingested_sources(contract, days=days)
            listed = zone.files(source, days)
            new = [f for f in listed if landing_key(f.relative_path) not in done]
            context.log.info(f"{len(new)} new landing file(s) for {contract.qualified_name} on {len(days)} day(s)")
            batch = read_landing(contract, zone, new, reader, batch_id=context.run_id)
            old = [f for f in listed if landing_key(f.relative_path) in done]
            problems = {
                "unreadable": batch.unreadable,
                "left_for_a_later_run": batch.retry,
                **landing_problems(zone, source, days, old, table_store.ingested_sizes(contract, {f.dt for f in old}) if old else {}),
            }
        for kind, found in problems.items():
            for path, why in found.items():
                context.log.warning(f"{path}: {kind.replace('_', ' ')} ({why})")
        read = {f.relative_path for f in new} - set(batch.retry)
        data = batch.data
        sizes = {f.relative_path: f.size for f in new if f.relative_path in read}
        yield dg.Output(
            # The batch names its landing files (and their sizes), so one of no records is recorded
            # as ingested too, and a later change to one is noticed.
            data.replace_schema_metadata({**(data.schema.metadata or {}), BATCH_SOURCES_KEY: json.dumps(sizes).encode()}),
            metadata={
                "new_files": len(read),
                "new_records": data.num_rows,
                **{f"{kind}_files": len(found) for kind, found in problems.items()},
                **{kind: dg.MetadataValue.json(dict(list(found.items())[:PROBLEMS_LISTED])) for kind, found in problems.items() if found},
            },
        )
        count = sum(len(found) for found in problems.values())
        yield dg.AssetCheckResult(
            check_name=LANDING_CHECK,
            passed=count == 0,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                "every landing file of the run's days was read"
                if count == 0
                else "; ".join(f"{len(found)} {kind.replace('_', ' ')}" for kind, found in problems.items() if found)
                + " (see the materialization's metadata and docs/landing-contract.md, 'Files that cannot be read')"
            ),
            metadata={f"{kind}_files": len(found) for kind, found in problems.items()},
        )

    return _asset


def bronze_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [
        bronze_asset(ORDERS_RAW, "orders", order_records, partitions_def),
        bronze_asset(CUSTOMERS_RAW, "customers", customer_records, partitions_def),
    ]

