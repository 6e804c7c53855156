"""gold/order_revenue: each live order with what its payments captured and refunded."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakehouse.contracts.tables import ORDER_REVENUE, ORDERS, PAYMENTS
from lakehouse.contracts.transformations import transformation


def _sum_of(*statuses: str) -> F.Column:
    """Sum of the payments in ``statuses`` in the order's own currency (others are not converted)."""
    same = F.col("status").isin(*statuses) & (F.col("p_currency") == F.col("currency"))
    return F.coalesce(F.sum(F.when(same, F.col("p_amount"))), F.lit(0).cast("decimal(18,2)")).cast("decimal(18,2)")


@transformation(target=ORDER_REVENUE, sources={"orders": ORDERS, "payments": PAYMENTS})
def order_revenue(orders: DataFrame, payments: DataFrame) -> DataFrame:
    """Per live order: amount, captured, refunded, net revenue (captured - refunded), payments."""
    paid = payments.select("order_id", F.col("amount").alias("p_amount"), F.col("currency").alias("p_currency"), "status", "payment_id")
    joined = orders.select("order_id", "customer_id", "currency", F.col("amount").alias("order_amount")).join(paid, "order_id", "left")
    per_order = joined.groupBy("order_id", "customer_id", "currency", "order_amount").agg(
        # A refunded payment was captured first: it counts in both, so net revenue is what stays captured.
        _sum_of("captured", "refunded").alias("captured_amount"),
        _sum_of("refunded").alias("refunded_amount"),
        F.count("payment_id").alias("payments"),
    )
    return per_order.select(
        "order_id", "customer_id", "currency", "order_amount", "captured_amount", "refunded_amount",
        (F.col("captured_amount") - F.col("refunded_amount")).cast("decimal(18,2)").alias("net_revenue"),
        F.col("payments").cast("long"),
    )
