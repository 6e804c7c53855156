"""Spark DataFrames and Arrow tables, each as the other (one place, for the store and the IO manager).

Imported lazily by callers: nothing here needs pyspark until a DataFrame is at hand."""

from __future__ import annotations

import pyarrow as pa


def is_spark_frame(data) -> bool:
    """Whether ``data`` is a Spark DataFrame (classic or Spark Connect), without importing pyspark."""
    return type(data).__module__.startswith("pyspark") and hasattr(data, "sparkSession")


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


def as_arrow(data) -> pa.Table:
    """``data`` (an Arrow table or a Spark DataFrame) as an Arrow table."""
    if isinstance(data, pa.Table):
        return data
    if is_spark_frame(data):
        return spark_to_arrow(data)
    raise TypeError(f"the lakehouse table store writes Spark DataFrames or Arrow tables, not {type(data).__name__}")


def conform_frame(contract, frame):
    """``frame`` with exactly the contract's columns and types, or ContractViolation naming the
    problem with the same words as ``TableContract.conform`` (the Arrow path's check).

    A column of another type is cast only where no value can change (a wider integer or float, a
    wider decimal); anything else is refused, because Spark's cast turns what it cannot convert
    into null. Required columns are counted for nulls in one pass (a delete event may leave columns
    other than the key and sequence null, as in the Arrow path)."""
    from pyspark.sql import functions as F

    from lakehouse.contracts.model import ContractViolation

    where = f"{contract.layer.value}/{contract.name}"
    present = set(frame.columns)
    missing = [c for c in contract.column_names if c not in present]
    if missing:
        raise ContractViolation(f"{where}: output is missing column(s) {', '.join(missing)}")
    have = {f.name: f.dataType for f in frame.schema.fields}
    selected = []
    for column in contract.columns:
        wanted = column.spark_type()
        got = have[column.name]
        if got != wanted and not _widens(got, wanted):
            raise ContractViolation(f"{where}: column {column.name!r} has type {got.simpleString()}, contract says {column.type}")
        selected.append(F.col(column.name).cast(wanted).alias(column.name) if got != wanted else F.col(column.name))
    flag = contract.delete_flag if contract.delete_flag and contract.delete_flag in present else None
    if flag:
        selected.append(F.col(flag).cast("boolean").alias(flag))
    conformed = frame.select(*selected)
    required = [c for c in contract.columns if c.required]
    if required:
        deleting = F.coalesce(F.col(flag), F.lit(False)) if flag else F.lit(False)
        exempt = lambda c: flag is not None and c.name not in (*contract.primary_key, contract.sequence_by)  # noqa: E731
        counts = conformed.agg(*[
            F.sum((F.col(c.name).isNull() & (~deleting if exempt(c) else F.lit(True))).cast("long")).alias(c.name) for c in required
        ]).first()
        for c in required:
            if counts[c.name]:
                raise ContractViolation(f"{where}: required column {c.name!r} has {counts[c.name]} null value(s)")
    return conformed


def _widens(got, wanted) -> bool:
    """Whether every value of Spark type ``got`` is exactly a value of ``wanted``."""
    from pyspark.sql import types as T

    integral = [T.ByteType, T.ShortType, T.IntegerType, T.LongType]
    if type(got) in integral and type(wanted) in integral:
        return integral.index(type(got)) <= integral.index(type(wanted))
    if isinstance(got, T.FloatType) and isinstance(wanted, T.DoubleType):
        return True
    if isinstance(got, T.DecimalType) and isinstance(wanted, T.DecimalType):
        return got.scale <= wanted.scale and got.precision - got.scale <= wanted.precision - wanted.scale
    if type(got) in integral and isinstance(wanted, T.DecimalType):
        digits = {T.ByteType: 3, T.ShortType: 5, T.IntegerType: 10, T.LongType: 19}[type(got)]
        return wanted.precision - wanted.scale >= digits
    return False


def frame_rows_outside(frame):
    """``rows_outside`` of table_store.partition_values for a DataFrame (a null value is outside)."""
    from pyspark.sql import functions as F

    return lambda column, values: frame.where(~F.coalesce(F.col(column).isin(values), F.lit(False))).count()
