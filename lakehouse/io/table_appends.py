"""Appends: Bronze as one Parquet file per landing file with its registry (io/bronze_files.py),
registered in the Glue catalog where there is one; and a plain Iceberg append."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pyarrow.dataset as ds

from lakehouse.contracts.model import Layer, TableContract, WriteMode
from lakehouse.io.aws import AwsConfig
from lakehouse.io.bronze_files import BATCH_SOURCES_KEY, BronzeFiles, ExtractPosition, PendingBronze, landing_day
from lakehouse.io.iceberg_tables import IcebergTables
from lakehouse.io.table_store import CommitStamp, WriteResult


class TableAppends(IcebergTables):
    """Bronze Parquet appends and their bookkeeping, and Iceberg appends."""

    def bronze(self, contract: TableContract) -> BronzeFiles:
        """A Bronze table's files and their registry."""
        fs, root = self._fs_path(self.uri(contract))
        put = self._put_if_absent if fs.type_name in ("s3", "gcs", "abfs") else None
        return BronzeFiles(
            contract, self.uri(contract), fs, root, self.catalog, self.namespaces[contract.layer], put, create_namespace=self.create_namespaces
        )

    def _put_if_absent(self, path: str, body: bytes) -> bool:
        """Create ``bucket/key`` unless it exists, in one conditional PUT (S3's If-None-Match)."""
        from botocore.exceptions import ClientError

        if self._s3 is None:
            self._s3 = (self.aws or AwsConfig(None)).client("s3")
        bucket, key = path.split("/", 1)
        try:
            self._s3.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
        except ClientError as exc:
            # 412: the object exists; 409: another conditional PUT of it is in flight. Either way
            # another writer has this landing file.
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise
        return True

    def append(self, contract: TableContract, data: pa.Table, stamp: CommitStamp) -> WriteResult:
        if contract.layer is not Layer.bronze:
            return self._iceberg_append(contract, data, stamp)
        listed = (data.schema.metadata or {}).get(BATCH_SOURCES_KEY)
        data = contract.conform(data)
        sources = json.loads(listed) if listed else sorted(set(data["_source_file"].to_pylist()))
        sizes = sources if isinstance(sources, dict) else None  # path -> size in bytes as listed
        sources = list(sources)
        with self._storage_errors(contract):
            if self.bronze_catalog is not None and sources:
                # Registered before the files are written: the catalog may list a partition that is
                # still empty (readers see no rows), never miss one that holds data.
                database, location = self.namespaces[contract.layer], self.uri(contract)
                self.bronze_catalog.ensure_table(contract, database, location)
                days = sorted({landing_day(s) for s in sources})
                self.bronze_catalog.add_partitions(contract, database, location, [(d,) for d in days])
            written, appeared = self.bronze(contract).append(data, sources, stamp, sizes)
        info = self.info(contract)
        return WriteResult(contract.qualified_name, info.uri, WriteMode.append, written, info.row_count, committed=bool(appeared))

    def extract_position(self, contract: TableContract) -> ExtractPosition:
        with self._storage_errors(contract):
            return self.bronze(contract).extract_position()

    def extract_batch_path(self, contract: TableContract, source: str, position: ExtractPosition, today: dt.date) -> str:
        with self._storage_errors(contract):
            return self.bronze(contract).extract_batch_path(source, position, today)

    def append_extract(self, contract: TableContract, data: pa.Table, path: str, stamp: CommitStamp, watermark: dict) -> WriteResult:
        """Append one database extract to a Bronze table, its watermark committed with its
        registration (io/bronze_files.py, ``BronzeFiles.append_extract``)."""
        data = contract.conform(data)
        with self._storage_errors(contract):
            if self.bronze_catalog is not None:
                database, location = self.namespaces[contract.layer], self.uri(contract)
                self.bronze_catalog.ensure_table(contract, database, location)
                self.bronze_catalog.add_partitions(contract, database, location, [(landing_day(path),)])
            written, appeared = self.bronze(contract).append_extract(data, path, stamp, watermark)
        info = self.info(contract)
        return WriteResult(contract.qualified_name, info.uri, WriteMode.append, written, info.row_count, committed=appeared is not None)

    def bronze_days(self, contract: TableContract) -> list[dt.date]:
        """The days a Bronze table has a folder for, oldest first (one listing, no file opened)."""
        with self._storage_errors(contract):
            return self.bronze(contract).days()

    def earliest_day(self, contract: TableContract, column: str) -> dt.date | None:
        """The UTC day of the smallest value of timestamp ``column`` in the table, from its data
        files' column statistics (no data file is read); None when the table is empty or missing."""
        table = self.load_table(contract)
        if table is None or table.current_snapshot() is None:
            return None
        files = table.inspect.files()
        if files.num_rows == 0:
            return None
        lows = [m[column]["lower_bound"] for m in files["readable_metrics"].to_pylist() if m and m.get(column)]
        lows = [v for v in lows if v is not None]
        if not lows:
            return None
        low = min(lows)
        return low.astimezone(dt.UTC).date() if isinstance(low, dt.datetime) else low

    def bronze_files(self, contract: TableContract) -> list[str]:
        with self._storage_errors(contract):
            return self.bronze(contract).files()

    def ingested_sources(self, contract: TableContract, days: set[dt.date] | None = None) -> set[str]:
        """Landing keys (``dt=D/name``) in Bronze on ``days``: a listing, no file is opened."""
        with self._storage_errors(contract):
            bronze = self.bronze(contract)
            return bronze.ingested(days) if days is not None else {f[: -len(".parquet")] for f in bronze.files()}

    def ingested_sizes(self, contract: TableContract, days: set[dt.date]) -> dict[str, int | None]:
        """Landing file -> its size in bytes when ingested (None: not recorded), of ``days``."""
        with self._storage_errors(contract):
            return self.bronze(contract).source_sizes(days)

    def pending_bronze(self, contract: TableContract, after: int) -> PendingBronze:
        with self._storage_errors(contract):
            return self.bronze(contract).pending(after)

    def bronze_records_through(self, contract: TableContract, seq: int) -> int:
        return self.bronze(contract).records_through(seq)

    def bronze_seq(self, contract: TableContract) -> int:
        return self.bronze(contract).current_seq()

    def _bronze_dataset(self, contract: TableContract, files: list[str] | None = None) -> ds.Dataset | None:
        fs, root = self._fs_path(self.uri(contract))
        root = root.rstrip("/")
        names = self.bronze(contract).files() if files is None else files
        if not names:
            return None
        part_schema = pa.schema([contract.arrow_schema.field(c) for c in contract.partition_by])
        return ds.dataset(
            [f"{root}/{f}" for f in names],
            filesystem=fs,
            format="parquet",
            # The contract's schema, not the first file's: files written before a column was added
            # read that column as null instead of failing the whole scan.
            schema=contract.arrow_schema,
            partitioning=ds.partitioning(part_schema, flavor="hive"),
            partition_base_dir=root,
        )

    def _iceberg_append(self, contract: TableContract, data: pa.Table, stamp: CommitStamp) -> WriteResult:
        table = self.ensure_table(contract)
        data = contract.conform(data)
        if data.num_rows:
            table.append(data, snapshot_properties=stamp.properties())
        return self._result(contract, table, data.num_rows, committed=data.num_rows > 0)
