"""silver/orders and silver/orders_rejects: order CDC events parsed, validated and merged by lsn."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.assets.silver.validation import (
    CURRENCY,
    INTEGER,
    NUMBER,
    count_records,
    delivery_order_desc,
    first_failure,
    is_timestamp,
    latest_per_key,
    rejects,
)
from lakehouse.assets.transformation import transformation
from lakehouse.contracts.tables import ORDERS, ORDERS_RAW, ORDERS_REJECTS

STATUSES = ["placed", "paid", "shipped", "delivered", "cancelled"]
OPS = ["c", "u", "d"]
_UPSERT_FIELDS = ["customer_id", "status", "amount", "currency", "created_at", "updated_at"]


def parse_order_events(raw: DataFrame) -> DataFrame:
    """Every Bronze order record with its fields as text and ``reason`` (null when valid)."""
    fields = F.from_json("_raw", "map<string,string>")
    df = raw.withColumn("__json", fields)
    for name in ["lsn", "op", "order_id", *_UPSERT_FIELDS]:
        df = df.withColumn(f"__{name}", F.col("__json")[name])
    t = {name: F.col(f"__{name}") for name in ["lsn", "op", "order_id", *_UPSERT_FIELDS]}
    is_delete = t["op"] == "d"
    rules = [
        # from_json reads the first JSON value and ignores what follows, so also demand the line be
        # just the object.
        (F.col("__json").isNull() | ~F.trim("_raw").rlike(r"^\{.*\}\z"), "malformed_json"),
        (t["lsn"].isNull(), "missing_field:lsn"),
        (~t["lsn"].rlike(INTEGER) | t["lsn"].cast("long").isNull(), "invalid_type:lsn"),
        (t["op"].isNull(), "missing_field:op"),
        (~t["op"].isin(OPS), "invalid_op"),
        (t["order_id"].isNull() | (t["order_id"] == ""), "missing_field:order_id"),
    ]
    # A delete needs nothing more; inserts and updates must carry a whole valid order.
    upsert_rules = [(t[name].isNull(), f"missing_field:{name}") for name in _UPSERT_FIELDS] + [
        (~t["status"].isin(STATUSES), "invalid_status"),
        (~t["amount"].rlike(NUMBER) | t["amount"].cast("decimal(18,2)").isNull(), "invalid_type:amount"),
        (t["amount"].cast("decimal(38,10)") < 0, "negative_amount"),
        (~t["currency"].rlike(CURRENCY), "invalid_currency"),
        (~is_timestamp(t["created_at"]), "invalid_timestamp:created_at"),
        (~is_timestamp(t["updated_at"]), "invalid_timestamp:updated_at"),
    ]
    rules += [(~is_delete & condition, reason) for condition, reason in upsert_rules]
    return df.withColumn("reason", first_failure(rules))


@transformation(
    target=ORDERS,
    sources={"orders_raw": ORDERS_RAW},
    accounting=lambda orders_raw: count_records(parse_order_events(orders_raw)),
)
def orders(orders_raw: DataFrame) -> DataFrame:
    """The winning (highest-lsn) valid event per order, with a delete flag the merge applies."""
    events = parse_order_events(orders_raw).where(F.col("reason").isNull())
    events = events.select(
        F.col("__order_id").alias("order_id"),
        F.col("__customer_id").alias("customer_id"),
        F.col("__status").alias("status"),
        F.col("__amount").cast("decimal(18,2)").alias("amount"),
        F.col("__currency").alias("currency"),
        F.to_timestamp("__created_at").alias("created_at"),
        F.to_timestamp("__updated_at").alias("updated_at"),
        F.col("__lsn").cast("long").alias("lsn"),
        (F.col("__op") == "d").alias("_is_delete"),
        "_source_file",
        "_line_number",
        "_ingested_at",
        "_batch_id",
    )
    return latest_per_key(events, "order_id", F.col("lsn").desc(), *delivery_order_desc()).drop("_line_number")


@transformation(target=ORDERS_REJECTS, sources={"orders_raw": ORDERS_RAW}, after=(ORDERS,))
def orders_rejects(orders_raw: DataFrame) -> DataFrame:
    """Every invalid order record, with the first rule it broke."""
    return rejects(parse_order_events(orders_raw))
