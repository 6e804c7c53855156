"""Spark expressions for the landing contract's validation rules (docs/landing-contract.md)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

# Java regexes: \z, not $, ends the value ($ would also accept a trailing line terminator).
ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})\z"
INTEGER = r"^-?[0-9]+\z"
NUMBER = r"^-?[0-9]+(\.[0-9]+)?\z"
CURRENCY = r"^[A-Z]{3}\z"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+\z"
COUNTRY = r"^[A-Z]{2}\z"


def first_failure(rules: list[tuple[Column, str | Column]]) -> Column:
    """The reason of the first rule whose condition holds (null when the record is valid)."""
    expr = None
    for condition, reason in rules:
        reason_col = F.lit(reason) if isinstance(reason, str) else reason
        expr = F.when(condition, reason_col) if expr is None else expr.when(condition, reason_col)
    return expr.otherwise(F.lit(None).cast("string"))


def is_timestamp(text: Column) -> Column:
    """ISO-8601 with an offset, and a real instant."""
    return text.rlike(ISO_TIMESTAMP) & F.to_timestamp(text).isNotNull()


def latest_per_key(df: DataFrame, key: str, *order: Column) -> DataFrame:
    """Keep the first row per key under ``order`` (the winner); ties are broken by ``order`` itself."""
    w = Window.partitionBy(key).orderBy(*order)
    return df.withColumn("__rank", F.row_number().over(w)).where(F.col("__rank") == 1).drop("__rank")


def delivery_order_desc() -> list[Column]:
    """Later delivered first: the tie-break of the landing contract."""
    return [F.col("_source_file").desc(), F.col("_line_number").desc()]


def rejects(df: DataFrame) -> DataFrame:
    """Shape invalid records as a rejects table (raw text, source, line and reason)."""
    return df.where(F.col("reason").isNotNull()).select(
        F.concat_ws(":", F.col("_source_file"), F.col("_line_number").cast("string")).alias("record_id"),
        "reason",
        "_raw",
        "_line_number",
        "_source_file",
        "_ingested_at",
        "_batch_id",
    )


def count_records(validated: DataFrame) -> dict[str, int]:
    """Records in a validated Bronze input and how many are invalid (they go to a rejects table)."""
    row = validated.agg(F.count("*").alias("read"), F.count("reason").alias("rejected")).first()
    return {"read": row["read"], "rejected": row["rejected"]}
