"""Dagster metadata for a table write: what users see on each materialization in the UI."""

from __future__ import annotations

import dagster as dg

from lakehouse.contracts.model import TableContract, WriteMode
from lakehouse.contracts.sensitive import mask_values
from lakehouse.io.table_store import TableInfo, WriteResult


def write_metadata(contract: TableContract, result: WriteResult) -> dict[str, dg.RawMetadataValue]:
    metadata: dict[str, dg.RawMetadataValue] = {
        "dagster/row_count": result.row_count,
        "dagster/column_schema": contract.column_schema,
        "dagster/table_name": result.table,
        "dagster/uri": dg.MetadataValue.path(result.uri),
        "table_uri": dg.MetadataValue.path(result.uri),
        "write_mode": result.mode.value,
        "rows_written": result.rows_written,
        "committed": result.committed,
    }
    if result.snapshot_id is not None:
        metadata["snapshot_id"] = dg.MetadataValue.text(str(result.snapshot_id))
    for name, value in result.counts.items():
        metadata[f"rows_{name}"] = value
    for column, values in result.changed.items():
        metadata[f"changed_{column}"] = dg.MetadataValue.json([str(v) for v in mask_values(contract, column, values)])
    return metadata


# The row counts a write of each mode reports (WriteResult.counts, as rows_<name>).
MODE_COUNTS = {WriteMode.merge: ("inserted", "updated", "deleted", "ignored")}


def unwritten_metadata(contract: TableContract) -> dict[str, int]:
    """The counts of a write that wrote nothing, as zeros: every materialization of a table carries
    the same numeric keys, so Dagster plots them over all of them (no gaps at the no-ops)."""
    return {"rows_written": 0, **{f"rows_{name}": 0 for name in MODE_COUNTS.get(contract.mode, ())}}


def info_metadata(contract: TableContract, info: TableInfo) -> dict[str, dg.RawMetadataValue]:
    metadata: dict[str, dg.RawMetadataValue] = {
        "dagster/row_count": info.row_count,
        "table_uri": dg.MetadataValue.path(info.uri),
        "data_files": info.files,
    }
    if info.snapshot_id is not None:
        metadata["snapshot_id"] = dg.MetadataValue.text(str(info.snapshot_id))
    return metadata
