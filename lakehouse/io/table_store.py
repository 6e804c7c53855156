"""The table store: one interface for the lakehouse's write semantics, whatever the engine.

Bronze tables are appended Parquet files; Silver tables are merged on their key; Gold tables are
overwritten whole or one partition at a time. Every write is one atomic commit stamped with the
Dagster run, asset, partition and code version that made it.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.contracts.model import ContractViolation, TableContract, WriteMode
from lakehouse.contracts.sensitive import mask_values, pseudonym_key, pseudonymise_frame, pseudonymise_table, pseudonymised_columns
from lakehouse.io.spark_frames import as_arrow, is_spark_frame


@dataclass(frozen=True)
class CommitStamp:
    """Who made a table version: recorded in every Iceberg snapshot summary and Parquet footer."""

    run_id: str
    asset_key: str
    partition_key: str | None = None
    code_version: str | None = None
    # Table properties set in the same atomic commit as the data (e.g. which Bronze files a
    # Silver table has applied), so a crash can never separate the data from its watermark.
    table_properties: dict[str, str] = field(default_factory=dict)

    def properties(self) -> dict[str, str]:
        props = {"dagster.run-id": self.run_id, "dagster.asset-key": self.asset_key}
        if self.partition_key:
            props["dagster.partition-key"] = self.partition_key
        if self.code_version:
            props["dagster.code-version"] = self.code_version
        return props


@dataclass(frozen=True)
class WriteResult:
    table: str  # layer.name
    uri: str  # table location
    mode: WriteMode
    rows_written: int  # rows in the data files this write added
    row_count: int  # rows in the table after the write
    snapshot_id: int | None = None  # Iceberg snapshot (None for Parquet tables or no-op writes)
    committed: bool = True  # False when there was nothing to change
    counts: dict[str, int] = field(default_factory=dict)  # merge: inserted/updated/deleted/ignored
    branch: str | None = None  # the branch written (write-audit-publish), None for main
    # merge: for each of the contract's change_columns, the distinct values held by changed rows
    # before and after the merge (e.g. created_at -> the Gold days to recompute)
    changed: dict[str, list] = field(default_factory=dict)
    # The rows this write added (merge: inserted and updated rows), for audits: no re-read needed.
    written_rows: object = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class TableInfo:
    table: str
    uri: str
    mode: WriteMode
    exists: bool
    row_count: int
    snapshot_id: int | None = None
    files: int = 0
    summary: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DayRange:
    """Rows whose timestamp ``column`` falls on a UTC day from ``first`` to ``last`` (inclusive)."""

    column: str
    first: dt.date
    last: dt.date

    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        """[start, end) as UTC instants."""
        start = dt.datetime.combine(self.first, dt.time(), dt.UTC)
        return start, dt.datetime.combine(self.last + dt.timedelta(days=1), dt.time(), dt.UTC)


def partition_values(
    contract: TableContract, partition: dict | None, rows_outside: Callable[[str, list], int] | None = None
) -> dict[str, list]:
    """The values of each partition column an overwrite replaces (empty: the whole table), after
    checking, for both stores alike, that they are partition columns and that no row of the data
    lies outside them (``rows_outside(column, values)`` counts those rows; None skips the check)."""
    if not partition:
        return {}
    unknown = set(partition) - set(contract.partition_by)
    if unknown:
        raise ContractViolation(f"{contract.qualified_name}: {sorted(unknown)} are not partition columns")
    out = {}
    for column, value in partition.items():
        values = list(value) if isinstance(value, (list, tuple, set)) else [value]
        outside = rows_outside(column, values) if rows_outside is not None else 0
        if outside:
            shown = ", ".join(str(v) for v in mask_values(contract, column, values))
            raise ContractViolation(f"{contract.qualified_name}: {outside} row(s) fall outside partition {column}={shown}")
        out[column] = values
    return out


def arrow_rows_outside(data: pa.Table) -> Callable[[str, list], int]:
    """``rows_outside`` of partition_values for an Arrow table (a null partition value is outside)."""

    def count(column: str, values: list) -> int:
        inside = pc.is_in(data[column], value_set=pa.array(values, data.schema.field(column).type))
        return data.num_rows - (pc.sum(inside).as_py() or 0)

    return count


class TableStore(ABC):
    """Reads and writes lakehouse tables with the semantics their contracts declare."""

    # Whether merges and overwrites take a Spark DataFrame as it is (else it is collected to Arrow).
    writes_spark_frames = False

    def write(
        self, contract: TableContract, data: pa.Table, stamp: CommitStamp, partition: dict | None = None, branch: str | None = None
    ) -> WriteResult:
        """Write ``data`` (an Arrow table or a Spark DataFrame) with the table's write mode (one
        atomic commit).

        ``partition`` (overwrite only) limits the overwrite to rows whose partition column equals the
        given value, or is in the given list of values.
        """
        mode = contract.mode
        if not (self.writes_spark_frames and mode is not WriteMode.append and is_spark_frame(data)):
            data = as_arrow(data)
        if pseudonymised_columns(contract):
            # Here, the one entrance of every write on both stores, so that no engine stores the clear value.
            key = pseudonym_key()
            data = pseudonymise_frame(contract, data, key) if is_spark_frame(data) else pseudonymise_table(contract, data, key)
        if mode is WriteMode.append:
            return self.append(contract, data, stamp)
        if mode is WriteMode.merge:
            return self.merge(contract, data, stamp, branch=branch)
        return self.overwrite(contract, data, stamp, partition, branch=branch)

    @abstractmethod
    def append(self, contract: TableContract, data: pa.Table, stamp: CommitStamp) -> WriteResult: ...

    @abstractmethod
    def merge(self, contract: TableContract, data: pa.Table, stamp: CommitStamp, branch: str | None = None) -> WriteResult: ...

    @abstractmethod
    def overwrite(
        self, contract: TableContract, data: pa.Table, stamp: CommitStamp, partition: dict | None = None, branch: str | None = None
    ) -> WriteResult: ...

    # Write-audit-publish: write to a branch of the write's own, audit it, then move main to it.
    @abstractmethod
    def start_audit(self, contract: TableContract, branch: str) -> int:
        """Start ``branch`` (and its side tables' branches) at main; returns main's snapshot id, the base."""

    @abstractmethod
    def publish(self, contract: TableContract, branch: str, table_properties: dict[str, str], *, base: int, head: int) -> int:
        """Move main from ``base`` to ``head`` (the snapshot this write produced on ``branch``) with
        ``table_properties`` and the side tables; refuses (CommitFailedException) if either moved."""

    @abstractmethod
    def column(self, contract: TableContract, column: str, branch: str | None = None) -> pa.Array: ...

    @abstractmethod
    def read(self, contract: TableContract, *, bronze_files: list[str] | None = None, days: DayRange | None = None) -> pa.Table:
        """The table's current contents, with the contract's Arrow schema (empty if it does not exist).

        ``bronze_files`` limits a Bronze read to those files (as listed by ``bronze_files``);
        ``days`` limits an Iceberg read to rows on those days.
        """

    @abstractmethod
    def uri(self, contract: TableContract) -> str:
        """Where the table lives (its root folder or Iceberg location)."""

    def data_files(self, contract: TableContract, *, bronze_files: list[str] | None = None, days: DayRange | None = None) -> list[str] | None:
        """Parquet files an engine can read directly for the same rows as ``read`` (None: use ``read``)."""
        return None

    @abstractmethod
    def bronze_days(self, contract: TableContract) -> list[dt.date]:
        """The landing days a Bronze table holds files of, oldest first."""

    @abstractmethod
    def earliest_day(self, contract: TableContract, column: str) -> dt.date | None:
        """The UTC day of the smallest value of timestamp ``column`` (from metadata), None if none."""

    @abstractmethod
    def bronze_files(self, contract: TableContract) -> list[str]:
        """A Bronze table's data files, relative to its root (each file is one appended batch)."""

    @abstractmethod
    def info(self, contract: TableContract) -> TableInfo: ...

    def set_table_properties(self, contract: TableContract, properties: dict[str, str]) -> None:
        """Set properties on a table another engine wrote (dbt on Athena), in one catalog commit."""
        raise NotImplementedError(f"{type(self).__name__} does not set table properties")

    def maintain(self, contract: TableContract, stamp: CommitStamp, *, dry_run: bool = False, now: dt.datetime | None = None, policy=None) -> list:
        """Compact, expire and clean ``contract``'s table under its maintenance policy; one
        ``MaintenanceReport`` per Iceberg table (io/table_maintenance.py: both stores' implementation)."""
        raise NotImplementedError(f"{type(self).__name__} does not maintain tables")

    # Database sources (sources/postgres.py): batches appended to Bronze with their watermark.
    @abstractmethod
    def extract_position(self, contract: TableContract):
        """The ``ExtractPosition`` (io/bronze_files.py) the next extract into Bronze ``contract`` starts from."""

    @abstractmethod
    def extract_batch_path(self, contract: TableContract, source: str, position, today: dt.date) -> str:
        """The source path the batch after ``position`` is recorded under (the same for every attempt)."""

    @abstractmethod
    def append_extract(self, contract: TableContract, data: pa.Table, path: str, stamp: CommitStamp, watermark: dict) -> WriteResult:
        """Append one extracted batch whose rows name source ``path``, committing ``watermark`` with it."""

    @abstractmethod
    def ingested_sources(self, contract: TableContract, days: set[dt.date] | None = None) -> set[str]:
        """Landing files already appended to a Bronze table (optionally only of those landing days)."""

    @abstractmethod
    def ingested_sizes(self, contract: TableContract, days: set[dt.date]) -> dict[str, int | None]:
        """Landing file -> its size in bytes when it was appended to a Bronze table (None: not
        recorded), of those landing days: a file listed with another size changed after ingestion."""
