"""Assets per layer. Importing this package registers every transformation."""

from lakehouse.assets.bronze import customers_raw, orders_raw
from lakehouse.assets.gold.sales import customer_summary, daily_sales
from lakehouse.assets.silver.customers import customers, customers_rejects
from lakehouse.assets.silver.orders import orders, orders_rejects
from lakehouse.assets.transformation import transformation_asset

TRANSFORMATIONS = (orders, orders_rejects, customers, customers_rejects, daily_sales, customer_summary)
BRONZE_ASSETS = (orders_raw, customers_raw)


def all_assets() -> list:
    return [*BRONZE_ASSETS, *(transformation_asset(t) for t in TRANSFORMATIONS)]
