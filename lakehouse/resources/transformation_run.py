"""Running a transformation, wherever it runs: plan its inputs, read them with Spark, call its
function, write the result through the table writer. The local compute runs this in the Dagster
process; the remote driver runs the very same code on Glue or EMR Serverless.
"""

import datetime as dt
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from lakehouse.contracts.model import Layer, TableContract
from lakehouse.contracts.transformations import Transformation, registered
from lakehouse.io.spark_frames import arrow_to_spark
from lakehouse.io.table_store import DayRange, TableStore
from lakehouse.io.table_write import TableWrite, TableWriter, WriteReport, WriteStep
from lakehouse.io.watermarks import applied_property, applied_seq, applied_value, built_from_properties


@dataclass(frozen=True)
class TransformationStep:
    """The Dagster step a transformation runs for: who writes, which partitions (days), and which
    days have a partition at all (``buildable``; None: any)."""

    write: WriteStep
    buildable: Callable[[dt.date], bool] | None = None

    @property
    def day_range(self) -> tuple[dt.date, dt.date]:
        keys = self.write.partition_keys
        if not keys:
            raise ValueError(f"{self.write.asset_key} is partitioned by day, but the step has no partition key")
        return dt.date.fromisoformat(keys[0]), dt.date.fromisoformat(keys[-1])


def run_transformation(
    t: Transformation, step: TransformationStep, writer: TableWriter, spark_session: Callable, log: logging.Logger
) -> WriteReport:
    """Plan, read, transform and write ``t`` for ``step``. ``spark_session`` is called only when
    there is something to read: a step with no new Bronze data never starts a JVM."""
    store = writer.store.get_store()
    plan = plan_inputs(step, t, store, log)
    planned = {} if plan.new_bronze_files is None else {"new_bronze_files": plan.new_bronze_files}
    if plan.nothing_new:
        log.info(f"no new Bronze data for {t.key}: nothing to do")
        # No record read: its accounting reports zeros, as a write that read some would (plots).
        nothing = TableWrite(None, accounting=dict.fromkeys(("read", "rejected"), 0)) if t.accounting else None
        report = writer.write(t.target, nothing, step.write, log)
    else:
        lineage = gold_lineage(step, t, store)  # before the reads: see built_from_properties
        session = spark_session()
        inputs = {name: load_source(session, store, read) for name, read in plan.reads.items()}
        counts = t.accounting(**inputs) if t.accounting else {}
        properties = {**plan.watermarks, **cumulative(plan.target_properties, counts), **lineage}
        output = TableWrite(
            t.fn(**inputs), table_properties=properties, accounting=counts,
            reject_files=_reject_files(t, inputs) if counts.get("rejected") else None,
        )
        report = writer.write(t.target, output, step.write, log)
    return WriteReport({**planned, **report.metadata}, report.checks)


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
    new_bronze_files: int | None = None  # Bronze-fed targets: how many Bronze files are new

    @property
    def nothing_new(self) -> bool:
        """Bronze has nothing the target has not applied: there is nothing to run."""
        return self.new_bronze_files == 0


def plan_inputs(step: TransformationStep, t: Transformation, store: TableStore, log: logging.Logger) -> InputPlan:
    """Decide what to read of each source: Bronze sources only where not yet applied to the target,
    the partition source only on the partitions' days."""
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
                log.warning(
                    f"{len(pending.waiting)} registered {source.qualified_name} file(s) such as {pending.waiting[0]} are not "
                    "written yet (an ingest in progress, or one that crashed: the next ingest writes them); applied later"
                )
            reads[name] = SourceRead(source, bronze_files=pending.files)
            # The watermark commits atomically with the data it produced (same Iceberg commit).
            watermarks[applied_property(source.qualified_name)] = applied_value(pending.seq)
        if new_files == 0:
            return InputPlan({}, {}, applied_by_target, new_bronze_files=0)
    days = None
    if t.partition_source:
        first, last = step.day_range
        days = DayRange(t.partition_source[1], first, last)
    for name, source in t.sources.items():
        if name not in reads:
            reads[name] = SourceRead(source, days=days if t.partition_source and name == t.partition_source[0] else None)
    return InputPlan(reads, watermarks, applied_by_target, new_bronze_files=new_files if bronze else None)


def gold_lineage(step: TransformationStep, t: Transformation, store: TableStore) -> dict[str, str]:
    """For a Gold target: how far it is rebuilt from its Silver sources once this write lands."""
    silver = [s for s in t.sources.values() if s.layer is Layer.silver]
    if t.target.layer is not Layer.gold or not silver:
        return {}
    days = None
    partition_source = None
    if t.partition_source:
        first, last = step.day_range
        days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
        partition_source = (t.sources[t.partition_source[0]], t.partition_source[1])
    return built_from_properties(store.info(t.target).properties, store, silver, days, partition_source, step.buildable)


def load_source(session, store: TableStore, read: SourceRead):
    """Spark reads the Parquet files itself where it has a file system for them (local files
    always; s3:// on Glue and EMR, whose EMRFS provides it): no row passes through this process.
    Anything else, such as s3:// on a local Spark without a Hadoop S3 connector, comes through Arrow."""
    from pyspark.sql import functions as F

    contract = read.contract
    files = store.data_files(contract, bronze_files=read.bronze_files, days=read.days)
    if files is not None and all(spark_reads(session, f) for f in {f.partition(":")[0] for f in files}):
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


def spark_reads(session, scheme: str) -> bool:
    """Whether ``session``'s Hadoop has a file system for URIs of ``scheme`` (e.g. ``s3``)."""
    if scheme == "file":
        return True
    jvm = getattr(session, "_jvm", None)
    if jvm is None:  # Spark Connect: the server's file systems cannot be asked from here
        return False
    try:
        jvm.org.apache.hadoop.fs.FileSystem.getFileSystemClass(scheme, session._jsc.hadoopConfiguration())
    except Exception:
        return False
    return True


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
