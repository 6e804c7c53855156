"""Compute resources: where a transformation's Spark code runs."""


from typing import Any

import dagster as dg

from lakehouse.assets.transformation import Transformation
from lakehouse.io.store_resource import TableStoreResource
from lakehouse.resources.spark import LocalSparkResource, arrow_to_spark


class SparkCompute(dg.ConfigurableResource):
    """Runs a transformation. Subclasses decide where; the transformation never knows."""

    def run(self, context: dg.AssetExecutionContext, t: Transformation) -> Any:
        raise NotImplementedError


class LocalSparkCompute(SparkCompute):
    """Runs in the Dagster process on local Spark; the IO manager writes the returned DataFrame."""

    spark: dg.ResourceDependency[LocalSparkResource]
    store: dg.ResourceDependency[TableStoreResource]

    def run(self, context: dg.AssetExecutionContext, t: Transformation) -> Any:
        session = self.spark.spark_session
        store = self.store.get_store()
        inputs = {}
        for name, contract in t.sources.items():
            data = store.read(contract)
            context.log.info(f"read {contract.qualified_name}: {data.num_rows} rows")
            inputs[name] = arrow_to_spark(session, data, contract.spark_schema)
        return t.fn(**inputs)
