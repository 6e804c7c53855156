"""Compute resources: where a transformation's Spark code runs."""

import datetime as dt
import json
from typing import Any

import dagster as dg

from lakehouse.assets.transformation import Transformation
from lakehouse.contracts.model import Layer, TableContract
from lakehouse.io.io_manager import TableWrite
from lakehouse.io.store_resource import TableStoreResource
from lakehouse.io.table_store import DayRange, TableStore
from lakehouse.resources.spark import LocalSparkResource, arrow_to_spark


def applied_property(source: TableContract) -> str:
    """The target-table property listing the Bronze batches (files) of ``source`` it has applied."""
    return f"lakehouse.applied.{source.qualified_name}"


def plan_inputs(context: dg.AssetExecutionContext, t: Transformation, store: TableStore) -> tuple[dict, dict[str, str]] | None:
    """Read each source as Arrow: Bronze sources only where not yet applied to the target, the
    partition source only on the partitions' days. Returns (inputs, watermark properties), or None
    when Bronze has nothing new for the target."""
    inputs: dict = {}
    watermarks: dict[str, str] = {}
    bronze = {name: c for name, c in t.sources.items() if c.layer is Layer.bronze}
    if bronze:
        applied_by_target = store.info(t.target).properties
        new_files = 0
        for name, source in bronze.items():
            key = applied_property(source)
            applied = set(json.loads(applied_by_target.get(key, "[]")))
            files = store.bronze_files(source)
            pending = [f for f in files if f not in applied]
            new_files += len(pending)
            inputs[name] = store.read(source, bronze_files=pending)
            # The watermark commits atomically with the data it produced (same Iceberg commit).
            watermarks[key] = json.dumps(sorted(applied | set(pending)), separators=(",", ":"))
        context.add_output_metadata({"new_bronze_files": new_files})
        if new_files == 0:
            return None
    days = None
    if t.partition_source:
        window = context.partition_key_range
        days = DayRange(t.partition_source[1], dt.date.fromisoformat(window.start), dt.date.fromisoformat(window.end))
    for name, source in t.sources.items():
        if name not in inputs:
            inputs[name] = store.read(source, days=days if t.partition_source and name == t.partition_source[0] else None)
    return inputs, watermarks


class SparkCompute(dg.ConfigurableResource):
    """Runs a transformation. Subclasses decide where; the transformation never knows."""

    def run(self, context: dg.AssetExecutionContext, t: Transformation) -> Any:
        raise NotImplementedError


class LocalSparkCompute(SparkCompute):
    """Runs in the Dagster process on local Spark; the IO manager writes the returned DataFrame."""

    spark: dg.ResourceDependency[LocalSparkResource]
    store: dg.ResourceDependency[TableStoreResource]

    def run(self, context: dg.AssetExecutionContext, t: Transformation) -> Any:
        planned = plan_inputs(context, t, self.store.get_store())
        if planned is None:
            context.log.info(f"no new Bronze data for {t.key}: nothing to do")
            return None
        arrow_inputs, watermarks = planned
        session = self.spark.spark_session  # started lazily: a no-op run never starts a JVM
        inputs = {}
        for name, data in arrow_inputs.items():
            context.log.info(f"{t.key} reads {t.sources[name].qualified_name}: {data.num_rows} rows")
            inputs[name] = arrow_to_spark(session, data, t.sources[name].spark_schema)
        return TableWrite(t.fn(**inputs), table_properties=watermarks)
