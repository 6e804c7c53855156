"""gold/daily_sales and gold/customer_summary: reporting aggregates over live Silver orders."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.contracts.tables import CUSTOMER_SUMMARY, CUSTOMERS, DAILY_SALES, ORDERS
from lakehouse.contracts.transformations import transformation


def _revenue(amount) -> F.Column:
    return F.round(F.sum(amount), 2).cast("decimal(18,2)")


@transformation(target=DAILY_SALES, sources={"orders": ORDERS}, partition_source=("orders", "created_at"))
def daily_sales(orders: DataFrame) -> DataFrame:
    """Orders, revenue and distinct customers per UTC creation day and currency (not cancelled)."""
    return (
        orders.where(F.col("status") != "cancelled")
        .groupBy(F.to_date("created_at").alias("report_date"), "currency")
        .agg(
            F.count("*").alias("total_orders"),
            _revenue(F.col("amount")).alias("total_revenue"),
            F.countDistinct("customer_id").alias("unique_customers"),
        )
    )


@transformation(target=CUSTOMER_SUMMARY, sources={"customers": CUSTOMERS, "orders": ORDERS})
def customer_summary(customers: DataFrame, orders: DataFrame) -> DataFrame:
    """Per customer known from either table: attributes, live order count and revenue."""
    per_customer = orders.groupBy("customer_id").agg(
        F.count("*").alias("order_count"),
        _revenue(F.when(F.col("status") != "cancelled", F.col("amount"))).alias("total_revenue"),
    )
    joined = customers.select("customer_id", "name", "email", "country").join(per_customer, "customer_id", "full_outer")
    return joined.select(
        "customer_id",
        "name",
        "email",
        "country",
        F.coalesce("order_count", F.lit(0)).cast("long").alias("order_count"),
        F.coalesce("total_revenue", F.lit(0).cast("decimal(18,2)")).alias("total_revenue"),
    )
