"""Bronze Parquet tables in the Glue Data Catalog: an external Hive-partitioned table per Bronze
table and a partition per landing day, so Athena (and Glue/EMR Spark) can query Bronze.

Silver and Gold need nothing here: pyiceberg's GlueCatalog registers them as Iceberg tables.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from lakehouse.contracts.model import TableContract

_DECIMAL = re.compile(r"^decimal\(\d+,\s*\d+\)$")
# Contract column type -> Hive type, as Athena and Spark read the Parquet that Arrow writes.
HIVE_TYPES = {
    "string": "string",
    "long": "bigint",
    "int": "int",
    "double": "double",
    "boolean": "boolean",
    "date": "date",
    "timestamptz": "timestamp",
}
PARQUET_FORMAT = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {
        "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
        "Parameters": {"serialization.format": "1"},
    },
}
BATCH_PARTITIONS = 100  # Glue's limit per BatchCreatePartition call


def hive_type(column_type: str) -> str:
    if _DECIMAL.match(column_type):
        return column_type.replace(" ", "")
    return HIVE_TYPES[column_type]


def _columns(contract: TableContract, names: Iterable[str]) -> list[dict]:
    return [
        {"Name": c.name, "Type": hive_type(c.type), **({"Comment": c.description[:255]} if c.description else {})}
        for c in (contract.column(n) for n in names)
    ]


def table_input(contract: TableContract, name: str, location: str) -> dict:
    """The Glue TableInput of a Bronze table stored under ``location`` (``s3://.../<table>``)."""
    parts = list(contract.partition_by)
    data_columns = [c for c in contract.column_names if c not in parts]
    return {
        "Name": name,
        "Description": contract.description[:2048],
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"EXTERNAL": "TRUE", "classification": "parquet", "parquet.compression": "ZSTD", "lakehouse.table": contract.qualified_name},
        "PartitionKeys": _columns(contract, parts),
        "StorageDescriptor": {"Columns": _columns(contract, data_columns), "Location": location.rstrip("/") + "/", **PARQUET_FORMAT},
    }


def partition_input(contract: TableContract, location: str, values: tuple) -> dict:
    folder = "/".join(f"{c}={v}" for c, v in zip(contract.partition_by, values))
    storage = {
        "Columns": _columns(contract, [c for c in contract.column_names if c not in contract.partition_by]),
        "Location": f"{location.rstrip('/')}/{folder}/",
        **PARQUET_FORMAT,
    }
    return {"Values": [str(v) for v in values], "StorageDescriptor": storage}


class GlueParquetTables:
    """Registers Bronze tables and their partitions in Glue; every call is idempotent, so a retried
    or concurrent append registers each table and partition exactly once."""

    def __init__(self, glue_client):
        self.glue = glue_client
        self._current: set[tuple[str, str]] = set()  # tables known to match their contract

    def ensure_table(self, contract: TableContract, database: str, location: str) -> None:
        wanted = table_input(contract, contract.name, location)
        key = (database, contract.name)
        if key in self._current:
            return
        errors = self.glue.exceptions
        try:
            existing = self.glue.get_table(DatabaseName=database, Name=contract.name)["Table"]
        except errors.EntityNotFoundException:
            existing = None
        if existing is None:
            try:
                self.glue.create_table(DatabaseName=database, TableInput=wanted)
            except errors.AlreadyExistsException:
                pass  # another writer registered it first
        elif _differs(existing, wanted):
            # The contract changed (a new column, a moved location): the table follows it.
            self.glue.update_table(DatabaseName=database, TableInput=wanted)
        self._current.add(key)

    def add_partitions(self, contract: TableContract, database: str, location: str, values: Iterable[tuple]) -> None:
        inputs = [partition_input(contract, location, v) for v in sorted(set(values))]
        for start in range(0, len(inputs), BATCH_PARTITIONS):
            response = self.glue.batch_create_partition(
                DatabaseName=database, TableName=contract.name, PartitionInputList=inputs[start : start + BATCH_PARTITIONS]
            )
            failed = [e for e in response.get("Errors", []) if e.get("ErrorDetail", {}).get("ErrorCode") != "AlreadyExistsException"]
            if failed:
                detail = failed[0].get("ErrorDetail", {})
                raise RuntimeError(
                    f"Glue refused {len(failed)} partition(s) of {database}.{contract.name}, e.g. "
                    f"{failed[0].get('PartitionValues')}: {detail.get('ErrorCode')}: {detail.get('ErrorMessage')}"
                )


def _differs(existing: dict, wanted: dict) -> bool:
    sd, want_sd = existing.get("StorageDescriptor", {}), wanted["StorageDescriptor"]
    strip = lambda cols: [(c["Name"], c["Type"]) for c in cols]  # noqa: E731
    return (
        strip(sd.get("Columns", [])) != strip(want_sd["Columns"])
        or strip(existing.get("PartitionKeys", [])) != strip(wanted["PartitionKeys"])
        or sd.get("Location") != want_sd["Location"]
        or existing.get("TableType") != wanted["TableType"]
    )


def catalog_metadata(store, contract: TableContract) -> dict[str, str]:
    """Where a table is registered, for asset metadata and listings: ``{"catalog_table": "db.table"}``
    plus, for Glue, the console link (empty for tables outside any catalog)."""
    database, name = store.identifier(contract)
    catalog = getattr(store, "catalog", None)
    glue = getattr(catalog, "glue", None)
    info = {"catalog_table": f"{database}.{name}"}
    if glue is not None:
        region = glue.meta.region_name
        info["glue_table"] = f"glue://{database}/{name}"
        info["glue_console_url"] = (
            f"https://{region}.console.aws.amazon.com/glue/home?region={region}#/v2/data-catalog/tables/view/{name}?database={database}"
        )
    return info
