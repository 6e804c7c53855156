"""The lakehouse IO manager: Dagster's face of the table store for in-process runs."""


from typing import Any

import pyarrow as pa
from dagster import ConfigurableIOManager, InputContext, OutputContext, ResourceDependency

from lakehouse.contracts.model import TableContract
from lakehouse.contracts.tables import contract_for
from lakehouse.io.metadata import write_metadata
from lakehouse.io.store_resource import TableStoreResource
from lakehouse.io.table_store import CommitStamp

CODE_VERSION_KEY = "lakehouse/code_version"


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
        if obj is None:
            return
        contract = contract_of(context.asset_key)
        data = _to_arrow(obj)
        partition_key = context.asset_partition_key if context.has_asset_partitions else None
        stamp = CommitStamp(
            run_id=context.run_id,
            asset_key=context.asset_key.to_user_string(),
            partition_key=partition_key,
            code_version=(context.definition_metadata or {}).get(CODE_VERSION_KEY),
        )
        partition = _partition_filter(contract, partition_key)
        result = self.store.get_store().write(contract, data, stamp, partition)
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


def _partition_filter(contract: TableContract, partition_key: str | None) -> dict | None:
    """Map a Dagster partition key onto the table's partition column (Gold overwrites one partition)."""
    if partition_key is None or not contract.partition_by or contract.layer.value == "bronze":
        return None
    import datetime as dt

    column = contract.column(contract.partition_by[0])
    value: Any = dt.date.fromisoformat(partition_key) if column.type == "date" else partition_key
    return {column.name: value}
