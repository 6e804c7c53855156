"""The lakehouse IO manager: Dagster's face of the table store for in-process runs."""


import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from dagster import ConfigurableIOManager, InputContext, OutputContext, ResourceDependency

from lakehouse.contracts.model import TableContract, WriteMode
from lakehouse.contracts.tables import contract_for
from lakehouse.io.metadata import info_metadata, write_metadata
from lakehouse.io.store_resource import TableStoreResource
from lakehouse.io.table_store import CommitStamp

CODE_VERSION_KEY = "lakehouse/code_version"


@dataclass(frozen=True)
class TableWrite:
    """An output plus the table properties (watermarks) to commit atomically with it."""

    data: Any
    table_properties: dict[str, str] = field(default_factory=dict)


def contract_of(asset_key) -> TableContract:
    if len(asset_key.path) != 2:
        raise KeyError(f"asset {asset_key.to_user_string()} is not a lakehouse table (expected <layer>/<table>)")
    return contract_for(*asset_key.path)


class LakehouseIOManager(ConfigurableIOManager):
    """Stores outputs with the table's write mode (append / merge / overwrite) and loads inputs.

    Outputs may be Spark DataFrames or Arrow tables. Inputs are loaded as the type the consuming
    asset annotates: a Spark DataFrame, or (default) an Arrow table. A partitioned Gold output
    overwrites only its partition.
    """

    store: ResourceDependency[TableStoreResource]

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        contract = contract_of(context.asset_key)
        store = self.store.get_store()
        if obj is None:  # nothing new to write: report the table as it stands
            context.add_output_metadata({**info_metadata(contract, store.info(contract)), "committed": False})
            return
        properties = {}
        if isinstance(obj, TableWrite):
            obj, properties = obj.data, obj.table_properties
        keys = list(context.asset_partition_keys) if context.has_asset_partitions else []
        stamp = CommitStamp(
            run_id=context.run_id,
            asset_key=context.asset_key.to_user_string(),
            partition_key=(keys[0] if len(keys) == 1 else f"{keys[0]}...{keys[-1]}") if keys else None,
            code_version=(context.definition_metadata or {}).get(CODE_VERSION_KEY),
            table_properties=properties,
        )
        result = store.write(contract, _to_arrow(obj), stamp, _partition_filter(contract, keys))
        context.add_output_metadata(write_metadata(contract, result))

    def load_input(self, context: InputContext) -> Any:
        contract = contract_of(context.asset_key)
        data = self.store.get_store().read(contract)
        wanted = getattr(context.dagster_type, "typing_type", None)
        if wanted is not None and getattr(wanted, "__module__", "").startswith("pyspark"):
            from pyspark.sql import SparkSession

            from lakehouse.resources.spark import arrow_to_spark, ensure_java

            ensure_java()
            spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
            return arrow_to_spark(spark, data, contract.spark_schema)
        return data


def _to_arrow(obj: Any) -> pa.Table:
    if isinstance(obj, pa.Table):
        return obj
    if type(obj).__module__.startswith("pyspark"):
        from lakehouse.resources.spark import spark_to_arrow

        return spark_to_arrow(obj)
    raise TypeError(f"the lakehouse IO manager stores Spark DataFrames or Arrow tables, not {type(obj).__name__}")


def _partition_filter(contract: TableContract, partition_keys: list[str]) -> dict | None:
    """Map Dagster partition keys onto the table's partition column: an overwrite replaces exactly
    those partitions (Bronze appends, so it needs none)."""
    if not partition_keys or not contract.partition_by or contract.mode is not WriteMode.overwrite:
        return None
    column = contract.column(contract.partition_by[0])
    values: list[Any] = [dt.date.fromisoformat(k) for k in partition_keys] if column.type == "date" else list(partition_keys)
    return {column.name: values}
