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
    is_json_string,
    is_json_text,
    is_timestamp,
    json_member,
    json_text,
    latest_per_key,
    rejects,
    with_json_object,
)
from lakehouse.contracts.tables import ORDERS, ORDERS_RAW, ORDERS_REJECTS
from lakehouse.contracts.transformations import transformation

STATUSES = ["placed", "paid", "shipped", "delivered", "cancelled"]
OPS = ["c", "u", "d"]
_UPSERT_FIELDS = ["customer_id", "status", "amount", "currency", "created_at", "updated_at"]
_FIELDS = ["lsn", "op", "order_id", *_UPSERT_FIELDS]
_ZERO = r"^-0+(\.0+)?\z"  # "-0", "-0.00": zero, not negative


def parse_order_events(raw: DataFrame) -> DataFrame:
    """Every Bronze order record with its fields as text (``__<field>``) and ``reason`` (null when valid)."""
    df = with_json_object(raw, "_raw", _FIELDS, into="__json")
    for name in _FIELDS:
        df = df.withColumn(f"__{name}", json_text(json_member("__json", name)))
    value = {name: json_member("__json", name) for name in _FIELDS}  # null when missing
    t = {name: F.col(f"__{name}") for name in _FIELDS}
    is_delete = t["op"] == "d"
    # not_utf8, set by Bronze (older Bronze files have no such column: null there)
    parse_error = F.col("_parse_error") if "_parse_error" in raw.columns else F.lit(None).cast("string")
    # A boolean, object or array has no text: it matches none of the text patterns below; for the ids,
    # which take any text, it is a type error of its own.
    rules = [
        (parse_error.isNotNull(), parse_error),
        (~F.col("__json_ok"), "malformed_json"),
        (value["lsn"].isNull(), "missing_field:lsn"),
        (~t["lsn"].rlike(INTEGER) | t["lsn"].cast("long").isNull(), "invalid_type:lsn"),
        (value["op"].isNull(), "missing_field:op"),
        (~is_json_string(value["op"]) | ~t["op"].isin(OPS), "invalid_op"),
        (value["order_id"].isNull() | (t["order_id"] == ""), "missing_field:order_id"),
        (~is_json_text(value["order_id"]), "invalid_type:order_id"),
    ]
    # A delete needs nothing more; inserts and updates must carry a whole valid order.
    upsert_rules = [(value[name].isNull(), f"missing_field:{name}") for name in _UPSERT_FIELDS] + [
        (~is_json_text(value["customer_id"]), "invalid_type:customer_id"),
        (~t["status"].isin(STATUSES), "invalid_status"),
        (~t["amount"].rlike(NUMBER) | t["amount"].cast("decimal(18,2)").isNull(), "invalid_type:amount"),
        (t["amount"].startswith("-") & ~t["amount"].rlike(_ZERO), "negative_amount"),
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
