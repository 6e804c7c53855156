"""Bronze: every landed record appended once, as raw text with its lineage, partitioned by landing day."""


import datetime as dt
import json
import re
from collections.abc import Callable, Iterable

import dagster as dg
import pyarrow as pa

from lakehouse.assets.transformation import IO_MANAGER_KEY, table_metadata
from lakehouse.contracts.model import TableContract
from lakehouse.contracts.tables import CUSTOMERS_RAW, ORDERS_RAW
from lakehouse.io.bronze_files import BATCH_SOURCES_KEY, landing_key
from lakehouse.io.store_resource import TableStoreResource
from lakehouse.sources.landing import CUSTOMER_HEADER, LandingFile, LandingZone, LandingZoneResource, split_customer_row

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


def read_landing_files(
    contract: TableContract, zone: LandingZone, files: list[LandingFile], reader: RecordReader, batch_id: str
) -> pa.Table:
    """All records of ``files`` as one Arrow table in the Bronze contract's schema."""
    ingested_at = dt.datetime.now(dt.UTC)
    columns: dict[str, list] = {name: [] for name in contract.column_names}
    for file in files:
        for record in reader(zone, file):
            for name, value in record.items():
                columns[name].append(value)
            columns["_source_file"].append(file.relative_path)
            columns["_ingested_at"].append(ingested_at)
            columns["_batch_id"].append(batch_id)
            columns["dt"].append(file.dt)
    return pa.Table.from_pydict(columns, schema=contract.arrow_schema)


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
        tags={"lakehouse/source": source},
    )
    def _asset(context: dg.AssetExecutionContext, landing: LandingZoneResource, store: TableStoreResource) -> pa.Table:
        days = {dt.date.fromisoformat(key) for key in context.partition_keys}
        zone = landing.zone()
        done = store.get_store().ingested_sources(contract, days=days)
        new = [f for f in zone.files(source, days) if landing_key(f.relative_path) not in done]
        context.log.info(f"{len(new)} new landing file(s) for {contract.qualified_name} on {len(days)} day(s)")
        data = read_landing_files(contract, zone, new, reader, batch_id=context.run_id)
        context.add_output_metadata({"new_files": len(new), "new_records": data.num_rows})
        # The batch names its landing files, so one of no records is recorded as ingested too.
        sources = json.dumps([f.relative_path for f in new]).encode()
        return data.replace_schema_metadata({**(data.schema.metadata or {}), BATCH_SOURCES_KEY: sources})

    return _asset


def bronze_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [
        bronze_asset(ORDERS_RAW, "orders", order_records, partitions_def),
        bronze_asset(CUSTOMERS_RAW, "customers", customer_records, partitions_def),
    ]

