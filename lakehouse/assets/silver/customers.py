"""silver/customers and silver/customers_rejects: customer rows validated, latest updated_at wins."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.assets.silver.validation import COUNTRY, EMAIL, count_records, delivery_order_desc, first_failure, is_timestamp, latest_per_key, rejects
from lakehouse.contracts.tables import CUSTOMERS, CUSTOMERS_RAW, CUSTOMERS_REJECTS
from lakehouse.contracts.transformations import transformation


def validate_customers(raw: DataFrame) -> DataFrame:
    """Every Bronze customer row with ``reason`` (null when valid)."""
    rules = [
        (F.col("_parse_error").isNotNull(), F.col("_parse_error")),  # not_utf8 or malformed_csv, from Bronze
        (F.col("customer_id").isNull(), "missing_field:customer_id"),
        (F.col("updated_at").isNull(), "missing_field:updated_at"),
        (~is_timestamp(F.col("updated_at")), "invalid_timestamp:updated_at"),
        (F.col("email").isNotNull() & ~F.col("email").rlike(EMAIL), "invalid_email"),
        (F.col("country").isNotNull() & ~F.col("country").rlike(COUNTRY), "invalid_country"),
    ]
    return raw.withColumn("reason", first_failure(rules))


@transformation(
    target=CUSTOMERS,
    sources={"customers_raw": CUSTOMERS_RAW},
    accounting=lambda customers_raw: count_records(validate_customers(customers_raw)),
)
def customers(customers_raw: DataFrame) -> DataFrame:
    """The valid row with the latest updated_at per customer."""
    valid = validate_customers(customers_raw).where(F.col("reason").isNull())
    valid = valid.withColumn("updated_at", F.to_timestamp("updated_at"))
    latest = latest_per_key(valid, "customer_id", F.col("updated_at").desc(), *delivery_order_desc())
    return latest.select("customer_id", "name", "email", "country", "updated_at", "_source_file", "_ingested_at", "_batch_id")


@transformation(target=CUSTOMERS_REJECTS, sources={"customers_raw": CUSTOMERS_RAW}, after=(CUSTOMERS,))
def customers_rejects(customers_raw: DataFrame) -> DataFrame:
    """Every invalid customer record, with the first rule it broke."""
    return rejects(validate_customers(customers_raw))
