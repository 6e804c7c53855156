"""Where a store's tables live and how they come to be: locations, catalog identifiers, the
creation and schema evolution of Iceberg tables (and of a merge table's tombstones), storage errors
that say what to do, and the result of a commit as the store reports it."""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
import pyarrow.fs as pafs
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import (
    NoSuchNamespaceError,
    NoSuchTableError,
)
from pyiceberg.table import Table

from lakehouse.contracts.model import Column, Layer, TableContract, WriteMode
from lakehouse.io.aws import DOCS, AwsConfig, AwsSetupError, Requirement, missing, s3_errors
from lakehouse.io.bronze_files import create_namespace_if_missing
from lakehouse.io.glue import GlueParquetTables
from lakehouse.io.iceberg_schema import evolve_schema, full_key_bounds
from lakehouse.io.table_store import WriteResult
from lakehouse.setting_names import bucket_variable, database_variable


class IcebergTables:
    """A store's tables: Iceberg tables in a pyiceberg catalog, Bronze Parquet under the same roots.

    ``locations`` maps each layer to the root URI its tables live under (``<root>/<table>``);
    ``namespaces`` maps each layer to its catalog namespace (Glue database).
    """

    def __init__(
        self,
        catalog: Catalog,
        locations: Mapping[Layer, str],
        namespaces: Mapping[Layer, str],
        filesystem: pafs.FileSystem | None = None,
        *,
        bronze_catalog: GlueParquetTables | None = None,
        create_namespaces: bool = True,
        aws: AwsConfig | None = None,
    ):
        """``filesystem`` serves every location (for S3: one configured with region and endpoint);
        ``bronze_catalog`` registers Bronze tables and partitions (Glue); ``create_namespaces=False``
        leaves namespaces to whoever provisions them (on AWS the Glue databases come from terraform)."""
        self.catalog = catalog
        self.locations = dict(locations)
        self.namespaces = dict(namespaces)
        self._fs = filesystem
        self.bronze_catalog = bronze_catalog
        self.create_namespaces = create_namespaces
        self.aws = aws
        self._s3 = None  # boto3 S3 client for conditional PUTs, made on first use

    def uri(self, contract: TableContract) -> str:
        return f"{self.locations[contract.layer].rstrip('/')}/{contract.name}"

    def identifier(self, contract: TableContract, suffix: str = "") -> tuple[str, str]:
        return (self.namespaces[contract.layer], contract.name + suffix)

    def _fs_path(self, uri: str) -> tuple[pafs.FileSystem, str]:
        if self._fs is not None:
            return self._fs, uri.split("://", 1)[-1]
        return pafs.FileSystem.from_uri(uri)

    def _storage_errors(self, contract: TableContract):
        """S3 errors on a table's location (missing bucket, access denied, ...) as messages that say what to do."""
        return s3_errors(self.uri(contract), f"{contract.layer.value} tables", bucket_variable(contract.layer.value), self.aws)

    def load_table(self, contract: TableContract, suffix: str = "") -> Table | None:
        try:
            return self.catalog.load_table(self.identifier(contract, suffix))
        except NoSuchTableError:
            return None

    def ensure_table(self, contract: TableContract) -> Table:
        table = self.load_table(contract)
        if table is None:
            namespace = self.namespaces[contract.layer]
            if self.create_namespaces:
                create_namespace_if_missing(self.catalog, namespace)
            # pyiceberg would re-apply a conflicting commit to the new metadata by itself; the
            # merge re-plans from the new state instead (merge()), so its own retries are off.
            properties = {"format-version": "2", "write.parquet.compression-codec": "zstd", "commit.retry.num-retries": "0"}
            if contract.mode is WriteMode.merge:
                properties.update(full_key_bounds(contract))
            layer = contract.layer.value
            try:
                with self._storage_errors(contract):  # the first metadata file goes to the table's bucket
                    table = self.catalog.create_table_if_not_exists(
                        self.identifier(contract),
                        schema=contract.iceberg_schema,
                        partition_spec=contract.partition_spec(),
                        location=self.uri(contract),
                        properties=properties,
                    )
            except NoSuchNamespaceError:
                req = Requirement("database", namespace, f"{layer} tables", database_variable(layer))
                raise AwsSetupError(missing(req, self.aws or AwsConfig(None)) + f" (see {DOCS})") from None
            return table
        return evolve_schema(contract, table)

    def _tombstones(self, contract: TableContract) -> Table:
        table = self.load_table(contract, "__tombstones")
        if table is None:
            key = contract.column(contract.primary_key[0])
            seq = contract.column(contract.sequence_by)
            tomb = TableContract(
                name=contract.name + "__tombstones",
                layer=contract.layer,
                description=f"Applied deletes of {contract.qualified_name}",
                columns=(key, Column(name="seq", type=seq.type, required=True)),
                primary_key=(key.name,),
                write_mode=WriteMode.overwrite,
            )
            table = self.catalog.create_table_if_not_exists(
                self.identifier(tomb),
                schema=tomb.iceberg_schema,
                location=self.uri(tomb),
                # As the table's own: a conflicting commit re-plans (merge, compaction), it is not re-applied.
                properties={"format-version": "2", "commit.retry.num-retries": "0", **full_key_bounds(tomb)},
            )
        return table

    def _result(
        self, contract, table: Table, written: int, committed: bool = True, counts=None, changed=None,
        branch: str | None = None, written_rows: pa.Table | None = None,
    ) -> WriteResult:
        table = table.refresh()
        snap = table.snapshot_by_name(branch) if branch else table.current_snapshot()
        rows = int(snap.summary.get("total-records", 0)) if snap and snap.summary else 0
        return WriteResult(
            contract.qualified_name, table.location(), contract.mode, written, rows,
            snapshot_id=snap.snapshot_id if snap else None, committed=committed, counts=counts or {}, changed=changed or {},
            branch=branch, written_rows=written_rows,
        )
