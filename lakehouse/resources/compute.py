"""Compute resources: where a transformation's Spark code runs."""

import datetime as dt
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dagster as dg

from lakehouse.assets.transformation import Transformation, registered
from lakehouse.contracts.model import Layer, TableContract
from lakehouse.io.io_manager import TableWrite
from lakehouse.io.spark_frames import arrow_to_spark
from lakehouse.io.store_resource import TableStoreResource
from lakehouse.io.table_store import DayRange, TableStore
from lakehouse.io.watermarks import applied_property, applied_seq, applied_value, built_from_properties
from lakehouse.resources.spark import LocalSparkResource


@dataclass(frozen=True)
class SourceRead:
    """What a transformation reads of one source: new Bronze batches, or the partition's days."""

    contract: TableContract
    bronze_files: list[str] | None = None
    days: DayRange | None = None

    def arrow(self, store: TableStore):
        return store.read(self.contract, bronze_files=self.bronze_files, days=self.days)


ACCOUNTING_PREFIX = "lakehouse.accounting."


def cumulative(current: dict[str, str], counts: dict[str, int]) -> dict[str, str]:
    """Running totals of records read and rejected, on top of the target's ``current`` properties,
    kept with the watermark so they always describe exactly the Bronze batches applied."""
    return {f"{ACCOUNTING_PREFIX}{k}": str(int(current.get(f"{ACCOUNTING_PREFIX}{k}", 0)) + v) for k, v in counts.items()}


@dataclass(frozen=True)
class InputPlan:
    reads: dict[str, SourceRead]
    watermarks: dict[str, str]  # target properties to commit with the output
    target_properties: dict[str, str]  # the target's properties when planned (Bronze-fed targets only)


def plan_inputs(context: dg.AssetExecutionContext, t: Transformation, store: TableStore) -> InputPlan | None:
    """Decide what to read of each source: Bronze sources only where not yet applied to the target,
    the partition source only on the partitions' days. None when Bronze has nothing new for the target."""
    reads: dict[str, SourceRead] = {}
    watermarks: dict[str, str] = {}
    applied_by_target: dict[str, str] = {}
    bronze = {name: c for name, c in t.sources.items() if c.layer is Layer.bronze}
    if bronze:
        applied_by_target = store.info(t.target).properties
        new_files = 0
        for name, source in bronze.items():
            applied = applied_seq(applied_by_target, source.qualified_name)
            pending = store.pending_bronze(source, applied)
            new_files += len(pending.files)
            if pending.waiting:
                context.log.warning(
                    f"{len(pending.waiting)} registered {source.qualified_name} file(s) such as {pending.waiting[0]} are not "
                    "written yet (an ingest in progress, or one that crashed: the next ingest writes them); applied later"
                )
            reads[name] = SourceRead(source, bronze_files=pending.files)
            # The watermark commits atomically with the data it produced (same Iceberg commit).
            watermarks[applied_property(source.qualified_name)] = applied_value(pending.seq)
        context.add_output_metadata({"new_bronze_files": new_files}, output_name="result")
        if new_files == 0:
            return None
    days = None
    if t.partition_source:
        window = context.partition_key_range
        days = DayRange(t.partition_source[1], dt.date.fromisoformat(window.start), dt.date.fromisoformat(window.end))
    for name, source in t.sources.items():
        if name not in reads:
            reads[name] = SourceRead(source, days=days if t.partition_source and name == t.partition_source[0] else None)
    return InputPlan(reads, watermarks, applied_by_target)


def gold_lineage(context: dg.AssetExecutionContext, t: Transformation, store: TableStore) -> dict[str, str]:
    """For a Gold target: how far it is rebuilt from its Silver sources once this write lands."""
    silver = [s for s in t.sources.values() if s.layer is Layer.silver]
    if t.target.layer is not Layer.gold or not silver:
        return {}
    days = None
    partition_source = None
    if t.partition_source:
        window = context.partition_key_range
        first, last = dt.date.fromisoformat(window.start), dt.date.fromisoformat(window.end)
        days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
        partition_source = (t.sources[t.partition_source[0]], t.partition_source[1])
    partitions = context.assets_def.partitions_def
    buildable = (lambda day: partitions.has_partition_key(day.isoformat())) if partitions is not None else None
    return built_from_properties(store.info(t.target).properties, store, silver, days, partition_source, buildable)


class SparkCompute(dg.ConfigurableResource):
    """Runs a transformation. Subclasses decide where; the transformation never knows."""

    def run(self, context: dg.AssetExecutionContext, t: Transformation) -> Any:
        raise NotImplementedError

    def warm_up(self) -> None:
        """Start, in the background, what the coming runs will need (nothing by default)."""


class LocalSparkCompute(SparkCompute):
    """Runs in the Dagster process on local Spark; the IO manager writes the returned DataFrame."""

    spark: dg.ResourceDependency[LocalSparkResource]
    store: dg.ResourceDependency[TableStoreResource]

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

    def run(self, context: dg.AssetExecutionContext, t: Transformation) -> Any:
        store = self.store.get_store()
        plan = plan_inputs(context, t, store)
        if plan is None:
            context.log.info(f"no new Bronze data for {t.key}: nothing to do")
            return None
        lineage = gold_lineage(context, t, store)  # before the reads: see built_from_properties
        session = self.spark.spark_session  # started lazily: a no-op run never starts a JVM
        inputs = {name: self._load(session, store, read) for name, read in plan.reads.items()}
        counts = t.accounting(**inputs) if t.accounting else {}
        properties = {**plan.watermarks, **cumulative(plan.target_properties, counts), **lineage}
        return TableWrite(
            t.fn(**inputs), table_properties=properties, accounting=counts,
            reject_files=_reject_files(t, inputs) if counts.get("rejected") else None,
        )

    @staticmethod
    def _load(session, store: TableStore, read: SourceRead):
        """Spark reads local Parquet files itself (no copy through this process); anything else,
        such as s3:// without a Hadoop S3 connector, comes through Arrow."""
        from pyspark.sql import functions as F

        contract = read.contract
        files = store.data_files(contract, bronze_files=read.bronze_files, days=read.days)
        if files is not None and all(f.startswith("file:") for f in files):
            if not files:
                return session.createDataFrame([], contract.spark_schema)
            reader = session.read.schema(contract.spark_schema)
            if contract.layer is Layer.bronze:  # partition columns (dt) come from the folder names
                reader = reader.option("basePath", store.uri(contract))
            df = reader.parquet(*files).select(*contract.column_names)
            if read.days is not None:
                start, end = read.days.bounds()
                column = F.col(read.days.column)
                df = df.where((column >= F.lit(start)) & (column < F.lit(end)))
            return df
        return arrow_to_spark(session, read.arrow(store), contract.spark_schema)


def _reject_files(t: Transformation, inputs: dict) -> Callable[[], list[tuple[str, int]] | None]:
    """For a Silver table fed from Bronze: a function giving the files of this batch with the most
    rejected records, (file, rejects), most first, or None if they cannot be told.

    It runs the table's quarantine transformation (``<layer>/<name>_rejects``, the one that follows
    this table) over the very inputs this batch read, so a record counts as rejected exactly when
    it is quarantined. The reject-rate check calls it only when it fails."""

    @functools.cache
    def files() -> list[tuple[str, int]] | None:
        try:
            quarantine = registered(f"{t.target.layer.value}/{t.target.name}_rejects")
        except KeyError:
            return None
        if t.target not in quarantine.after or set(quarantine.sources) - set(inputs):
            return None
        try:
            counts = quarantine.fn(**{name: inputs[name] for name in quarantine.sources}).groupBy("_source_file").count().collect()
        except Exception:  # an attribution only: the check still reports the rate without it
            return None
        return sorted(((r["_source_file"], r["count"]) for r in counts), key=lambda fc: (-fc[1], fc[0]))

    return files
