"""silver/payments and silver/payments_rejects: payments rows from PostgreSQL validated, the latest
version per payment wins, and delete events (from the source's key snapshots) remove it."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.assets.silver.validation import CURRENCY, count_records, delivery_order_desc, first_failure, latest_per_key, rejects
from lakehouse.contracts.tables import PAYMENT_STATUSES, PAYMENTS, PAYMENTS_RAW, PAYMENTS_REJECTS
from lakehouse.contracts.transformations import transformation

_VALUES = ["payment_id", "order_id", "amount", "currency", "status", "updated_at"]


def validate_payments(raw: DataFrame) -> DataFrame:
    """Every Bronze payments row with ``reason`` (null when valid) and ``_raw``, its values as JSON
    (the quarantine's record text). The source's types hold already; these are its business rules."""
    deleted = F.col("_deleted")
    rules = [
        (F.col("payment_id").isNull() | (F.col("payment_id") == ""), "missing_field:payment_id"),
        (F.col("updated_at").isNull(), "missing_field:updated_at"),
    ]
    upsert_rules = [(F.col(name).isNull(), f"missing_field:{name}") for name in ("order_id", "amount", "currency", "status")] + [
        (F.col("amount") < 0, "negative_amount"),
        (~F.col("currency").rlike(CURRENCY), "invalid_currency"),
        (~F.col("status").isin(PAYMENT_STATUSES), "invalid_status"),
    ]
    rules += [(~deleted & condition, reason) for condition, reason in upsert_rules]
    raw_json = F.to_json(F.struct(*[F.col(c).cast("string").alias(c) for c in _VALUES], deleted.alias("_deleted")))
    return raw.withColumn("reason", first_failure(rules)).withColumn("_raw", raw_json)


@transformation(
    target=PAYMENTS,
    sources={"payments_raw": PAYMENTS_RAW},
    accounting=lambda payments_raw: count_records(validate_payments(payments_raw)),
)
def payments(payments_raw: DataFrame) -> DataFrame:
    """The latest valid version per payment (a delete event after it: the delete), for the merge."""
    valid = validate_payments(payments_raw).where(F.col("reason").isNull())
    # Of a row and a delete event with the same instant, the delete is the later (the key snapshot
    # stamps deletes after every change it could have seen).
    latest = latest_per_key(valid, "payment_id", F.col("updated_at").desc(), F.col("_deleted").desc(), *delivery_order_desc())
    return latest.select(*_VALUES, F.col("_deleted").alias("_is_delete"), "_source_file", "_ingested_at", "_batch_id")


@transformation(target=PAYMENTS_REJECTS, sources={"payments_raw": PAYMENTS_RAW}, after=(PAYMENTS,))
def payments_rejects(payments_raw: DataFrame) -> DataFrame:
    """Every invalid payments row, with the first rule it broke."""
    return rejects(validate_payments(payments_raw))
