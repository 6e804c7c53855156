"""Assets per layer. Importing this package registers every transformation."""

import datetime as dt
import warnings

import dagster as dg

from lakehouse import user_tables
from lakehouse.assets.bronze import bronze_assets
from lakehouse.assets.bronze_database import database_bronze_asset
from lakehouse.assets.gold.dbt_models import dbt_model_assets
from lakehouse.assets.gold.revenue import order_revenue
from lakehouse.assets.gold.sales import customer_summary, daily_sales
from lakehouse.assets.silver.customers import customers, customers_rejects
from lakehouse.assets.silver.orders import orders, orders_rejects
from lakehouse.assets.silver.payments import payments, payments_rejects
from lakehouse.assets.transformation import transformation_asset
from lakehouse.automation.partitions import daily_partitions
from lakehouse.contracts.model import Layer
from lakehouse.contracts.tables import PAYMENTS, PAYMENTS_RAW
from lakehouse.sources.postgres import PostgresTable

TRANSFORMATIONS = (orders, orders_rejects, customers, customers_rejects, daily_sales, customer_summary)
# Fed by the database sources: in the code location when the database is configured.
DATABASE_TRANSFORMATIONS = (payments, payments_rejects, order_revenue)
PAYMENTS_SOURCE = PostgresTable(
    name="payments",
    table="public.payments",
    columns=("payment_id", "order_id", "amount", "currency", "status", "updated_at"),
    key="payment_id",
    watermark="updated_at",
)
DATABASE_SOURCE_TAG = "lakehouse/source"
user_tables.transformations()  # registers them on import too, like the modules above

# Gold should follow new data within a day; the UI flags it when it does not.
GOLD_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=48), warn_window=dt.timedelta(hours=26))


def all_assets(
    partitions_start: dt.date = dt.date(2000, 1, 1), dbt_target: str = "duckdb", database_sources: bool = False
) -> list[dg.AssetsDefinition]:
    days = daily_partitions(partitions_start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)  # single-run backfill policy is marked beta
        assets = list(bronze_assets(days))
        if database_sources:
            assets.append(database_bronze_asset(PAYMENTS_SOURCE, PAYMENTS_RAW, PAYMENTS))
        # user_tables: the tables `lakehouse new table` scaffolded
        for t in (*TRANSFORMATIONS, *user_tables.transformations(), *(DATABASE_TRANSFORMATIONS if database_sources else ())):
            extra = {"freshness_policy": GOLD_FRESHNESS} if t.target.layer is Layer.gold else {}
            assets.append(transformation_asset(t, partitions_def=days, **extra))
    assets.append(dbt_model_assets(dbt_target))
    return assets


def database_asset_keys() -> list[dg.AssetKey]:
    """The assets the database sources feed, up to Silver (the database ingest job's)."""
    return [PAYMENTS_RAW.asset_key, *(t.target.asset_key for t in DATABASE_TRANSFORMATIONS if t.target.layer is not Layer.gold)]


__all__ = ["DATABASE_TRANSFORMATIONS", "TRANSFORMATIONS", "all_assets", "database_asset_keys"]
