"""The lakehouse IO manager: Dagster's face of the table store for in-process runs."""


from typing import Any

from dagster import ConfigurableIOManager, InputContext, OutputContext, ResourceDependency

from lakehouse.contracts.model import TableContract
from lakehouse.contracts.tables import contract_for
from lakehouse.io.table_write import CODE_VERSION_KEY, TableWriter, WriteStep


def contract_of(asset_key) -> TableContract:
    if len(asset_key.path) != 2:
        raise KeyError(f"asset {asset_key.to_user_string()} is not a lakehouse table (expected <layer>/<table>)")
    return contract_for(*asset_key.path)


class LakehouseIOManager(ConfigurableIOManager):
    """Stores outputs with the table's write mode (append / merge / overwrite) and loads inputs.

    Outputs may be Spark DataFrames or Arrow tables, handed to the store as they are (the Spark
    store writes a DataFrame where it is; the Arrow store collects it). Inputs are loaded as the
    type the consuming asset annotates: a Spark DataFrame, or (default) an Arrow table. A
    partitioned Gold output overwrites only its partition. The write, its audit and its publish are
    ``writer``'s (the same as everywhere else a table is written).
    """

    writer: ResourceDependency[TableWriter]

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        keys = list(context.asset_partition_keys) if context.has_asset_partitions else []
        step = WriteStep(
            run_id=context.run_id,
            asset_key=context.asset_key.to_user_string(),
            partition_keys=tuple(keys),
            code_version=(context.definition_metadata or {}).get(CODE_VERSION_KEY),
        )
        report = self.writer.write(contract_of(context.asset_key), obj, step, context.log)
        # An IO manager cannot report check results; an asset with checks writes in its body
        # (TableWriter.write there, and returns report.materialize_result()).
        context.add_output_metadata(report.metadata)

    def load_input(self, context: InputContext) -> Any:
        contract = contract_of(context.asset_key)
        data = self.writer.store.get_store().read(contract)
        wanted = getattr(context.dagster_type, "typing_type", None)
        if wanted is not None and getattr(wanted, "__module__", "").startswith("pyspark"):
            from pyspark.sql import SparkSession

            from lakehouse.io.spark_frames import arrow_to_spark

            spark = SparkSession.getActiveSession()
            if spark is None:
                raise RuntimeError(
                    f"{context.asset_key.to_user_string()} asks for {contract.qualified_name} as a Spark DataFrame, but no Spark "
                    "session is running: give the asset the `spark` resource (LocalSparkResource) and start its session, "
                    "or annotate the input as pyarrow.Table"
                )
            return arrow_to_spark(spark, data, contract.spark_schema)
        return data
