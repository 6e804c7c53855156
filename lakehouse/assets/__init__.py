"""Assets per layer. Importing this package registers every transformation."""

import datetime as dt
import warnings

import dagster as dg

from lakehouse.assets.bronze import bronze_assets
from lakehouse.assets.gold.dbt_models import dbt_model_assets
from lakehouse.assets.gold.sales import customer_summary, daily_sales
from lakehouse.assets.silver.customers import customers, customers_rejects
from lakehouse.assets.silver.orders import orders, orders_rejects
from lakehouse.assets.transformation import transformation_asset
from lakehouse.automation.partitions import daily_partitions
from lakehouse.contracts.model import Layer

TRANSFORMATIONS = (orders, orders_rejects, customers, customers_rejects, daily_sales, customer_summary)

# Gold should follow new data within a day; the UI flags it when it does not.
GOLD_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=48), warn_window=dt.timedelta(hours=26))


def all_assets(partitions_start: dt.date = dt.date(2000, 1, 1), dbt_target: str = "duckdb") -> list[dg.AssetsDefinition]:
    days = daily_partitions(partitions_start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)  # single-run backfill policy is marked beta
        assets = list(bronze_assets(days))
        for t in TRANSFORMATIONS:
            extra = {"freshness_policy": GOLD_FRESHNESS} if t.target.layer is Layer.gold else {}
            assets.append(transformation_asset(t, partitions_def=days, **extra))
    assets.append(dbt_model_assets(dbt_target))
    return assets


__all__ = ["TRANSFORMATIONS", "all_assets"]
