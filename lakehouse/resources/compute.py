"""Compute resources: where a transformation's Spark code runs.

Every one returns the step's ``MaterializeResult`` (metadata and check results), whether the
transformation ran here or on a remote Spark service.
"""

import threading

import dagster as dg

from lakehouse.contracts.transformations import Transformation
from lakehouse.io.table_write import TableWriter, WriteStep
from lakehouse.resources.spark import LocalSparkResource
from lakehouse.resources.transformation_run import TransformationStep, run_transformation


def step_of(context: dg.AssetExecutionContext, t: Transformation) -> TransformationStep:
    """The step ``context`` runs ``t`` for: its run, partitions (days), and the days with a partition."""
    partitions = context.assets_def.partitions_def
    keys = tuple(context.partition_keys) if partitions is not None else ()
    return TransformationStep(
        write=WriteStep(run_id=context.run_id, asset_key=t.key, partition_keys=keys, code_version=t.code_version),
        buildable=(lambda day: partitions.has_partition_key(day.isoformat())) if partitions is not None else None,
    )


class SparkCompute(dg.ConfigurableResource):
    """Runs a transformation. Subclasses decide where; the transformation never knows. ``writer``
    writes wherever the tables are written in this process (local runs; the report of a step with
    nothing to run)."""

    writer: dg.ResourceDependency[TableWriter]

    def run(self, context: dg.AssetExecutionContext, t: Transformation) -> dg.MaterializeResult:
        raise NotImplementedError

    def warm_up(self) -> None:
        """Start, in the background, what the coming runs will need (nothing by default)."""


class LocalSparkCompute(SparkCompute):
    """Runs in the Dagster process on local Spark, and writes through the table writer here."""

    spark: dg.ResourceDependency[LocalSparkResource]

    def warm_up(self) -> None:
        """Start the Spark session on a background thread. Starting a JVM takes seconds of mostly
        single-threaded work; done while Dagster creates the run and Bronze ingests, the first
        Spark step finds the session ready (``getOrCreate`` returns it, or waits for it under
        Spark's own lock). A failure here is left for that step to raise, with its context."""

        def start() -> None:
            try:
                _ = self.spark.spark_session
            except Exception:
                pass

        threading.Thread(target=start, name="spark-warm-up", daemon=True).start()

    def run(self, context: dg.AssetExecutionContext, t: Transformation) -> dg.MaterializeResult:
        report = run_transformation(t, step_of(context, t), self.writer, lambda: self.spark.spark_session, context.log)
        return report.materialize_result()
