"""What is out of date: landing days with files not yet in Bronze, Gold days Silver has changed.

Shared by `lakehouse refresh`, the sensors and the schedule, so they all agree on what to run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg
import pyarrow as pa

from lakehouse.automation.partitions import START_SETTING, PartitionRangeError, check_days, contiguous_ranges
from lakehouse.contracts.tables import (
    CUSTOMER_SUMMARY,
    CUSTOMERS,
    CUSTOMERS_RAW,
    CUSTOMERS_REJECTS,
    DAILY_SALES,
    ORDER_REVENUE,
    ORDERS,
    ORDERS_RAW,
    ORDERS_REJECTS,
    PAYMENTS,
    PAYMENTS_RAW,
    PAYMENTS_REJECTS,
)
from lakehouse.io.bronze_files import landing_key
from lakehouse.io.table_store import TableStore
from lakehouse.io.watermarks import ALL_DAYS, BuiltFrom, applied_seq, is_stale, source_changes, stale_days
from lakehouse.resources.dbt import DbtModel, stale_models
from lakehouse.sources.landing import LandingFile, LandingZone

INGEST_JOB = "ingest"
DATABASE_INGEST_JOB = "database_ingest"
PUBLISH_JOB = "publish"
MAINTENANCE_JOB = "maintenance"
PIPELINE_TAG = "lakehouse/pipeline"  # the instance limits concurrent runs per value (dagster.yaml)
BRONZE_BY_SOURCE = {"orders": ORDERS_RAW, "customers": CUSTOMERS_RAW}


def new_landing_files(
    zone: LandingZone, store: TableStore, exclude: set[str] = frozenset(), since: dt.date | None = None
) -> list[LandingFile]:
    """Landing files not yet in Bronze (and not in ``exclude``), of landing days from ``since`` on
    (all days if None). A listing of both sides: no file is opened."""
    found: list[LandingFile] = []
    for source, contract in BRONZE_BY_SOURCE.items():
        days = None if since is None else {d for d in zone.days(source) if d >= since}
        candidates = [f for f in zone.files(source, days) if f.relative_path not in exclude]
        if candidates:
            done = store.ingested_sources(contract, days={f.dt for f in candidates})
            found += [f for f in candidates if landing_key(f.relative_path) not in done]
    return found


# Silver (and quarantine) tables and the Bronze table each applies.
SILVER_FROM_BRONZE = {ORDERS: ORDERS_RAW, ORDERS_REJECTS: ORDERS_RAW, CUSTOMERS: CUSTOMERS_RAW, CUSTOMERS_REJECTS: CUSTOMERS_RAW}
SILVER_FROM_DATABASE = {PAYMENTS: PAYMENTS_RAW, PAYMENTS_REJECTS: PAYMENTS_RAW}
# Whole-table Gold tables and the Silver tables each is built from; those of database sources apart.
WHOLE_TABLE_GOLD = {CUSTOMER_SUMMARY: (ORDERS, CUSTOMERS)}
WHOLE_TABLE_GOLD_FROM_DATABASE = {ORDER_REVENUE: (ORDERS, PAYMENTS)}


def silver_behind(store: TableStore) -> dict[str, tuple[int, int]]:
    """Silver tables that have not applied every Bronze registration (e.g. after a Bronze-only
    backfill): table -> (applied, registered) sequence numbers."""
    behind = {}
    registered = {bronze: store.bronze_seq(bronze) for bronze in set(SILVER_FROM_BRONZE.values())}
    for silver, bronze in SILVER_FROM_BRONZE.items():
        applied = applied_seq(store.info(silver).properties, bronze.qualified_name)
        if applied < registered[bronze]:
            behind[silver.qualified_name] = (applied, registered[bronze])
    return behind


def silver_catch_up_request(behind: dict[str, tuple[int, int]], run_key_prefix: str | None = None) -> dg.RunRequest:
    """An ingest run of the Silver assets alone: they apply what Bronze registered since."""
    version = ",".join(f"{table}={seqs[1]}" for table, seqs in sorted(behind.items()))
    return dg.RunRequest(
        run_key=f"{run_key_prefix}:{version}" if run_key_prefix else None,
        job_name=INGEST_JOB,
        asset_selection=[c.asset_key for c in SILVER_FROM_BRONZE],
        tags={PIPELINE_TAG: INGEST_JOB},
    )


def in_partitions(files: list[LandingFile], partitions, log) -> list[LandingFile]:
    """The files whose landing day has a partition; the others are logged with the setting to change."""
    kept = []
    for file in files:
        try:
            check_days([file.dt], partitions.definition(), "landing day")
        except PartitionRangeError as exc:
            log(f"{file.relative_path} not requested: {exc}")
            continue
        kept.append(file)
    return kept


def split_by_partitions(days: list[dt.date], partitions: dg.DailyPartitionsDefinition) -> tuple[list[dt.date], list[dt.date]]:
    """(days that have a partition, days that do not): a day outside the partitions is reported,
    and never holds back the others."""
    inside = [d for d in days if partitions.has_partition_key(d.isoformat())]
    return inside, [d for d in days if d not in set(inside)]


def outside_message(days: list[dt.date], partitions: dg.DailyPartitionsDefinition) -> str:
    shown = ", ".join(d.isoformat() for d in days[:3]) + (f" and {len(days) - 3} more" if len(days) > 3 else "")
    return (
        f"gold/daily_sales: report date(s) {shown} changed in Silver but have no partition "
        f"(partitions run from {START_SETTING}={partitions.start.date()} to today): not built. Lower the setting "
        "to build earlier days; a date in the future points at the data's clocks"
    )


def range_tags(first: dt.date, last: dt.date) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": first.isoformat(),
        "dagster/asset_partition_range_end": last.isoformat(),
    }


def ingest_requests(files: list[LandingFile], run_key_prefix: str | None = None) -> list[dg.RunRequest]:
    """One ingest run (Bronze days + Silver) per range of consecutive landing days."""
    requests = []
    for first, last in contiguous_ranges(f.dt for f in files):
        in_range = sorted(f.relative_path for f in files if first <= f.dt <= last)
        digest = hashlib.sha256("\n".join(in_range).encode()).hexdigest()[:16]
        key = f"{run_key_prefix}:{first}:{last}:{digest}" if run_key_prefix else None
        requests.append(
            dg.RunRequest(run_key=key, job_name=INGEST_JOB, tags={**range_tags(first, last), PIPELINE_TAG: INGEST_JOB})
        )
    return requests


@dataclass(frozen=True)
class GoldPlan:
    report_dates: list[dt.date]  # daily_sales partitions Silver changed since they were last built
    summary_stale: bool  # customer_summary is older than a change to Silver orders or customers
    silver_version: str  # the Silver versions planned from ("silver.orders=12,..."): a run key part
    # dbt models to build (their Silver sources or SQL changed since they were built)
    dbt_models: tuple[dg.AssetKey, ...] = ()
    # the other whole-table Gold tables older than a change to a Silver table they are built from
    stale_tables: tuple[dg.AssetKey, ...] = ()

    @property
    def unpartitioned(self) -> list[dg.AssetKey]:
        """Whole-table Gold assets to rebuild: they ride on the first publish run."""
        return ([CUSTOMER_SUMMARY.asset_key] if self.summary_stale else []) + list(self.stale_tables) + list(self.dbt_models)


def whole_table_stale(store: TableStore, gold, sources) -> bool:
    """Whether whole-table Gold ``gold`` is older than a change to one of its Silver ``sources``."""
    props = store.info(gold).properties
    stale = False
    for source in sources:
        source_built = BuiltFrom.parse(props, source.qualified_name)
        stale |= is_stale(source_changes(store, source, source_built.through), source_built)
        stale |= not BuiltFrom.recorded(props, source.qualified_name) and bool(store.current_seq(source))
    return stale


def plan_gold(store: TableStore, dbt_models: Sequence[DbtModel] = (), database_sources: bool = False) -> GoldPlan:
    """Gold work implied by Silver changes, read from the tables themselves: each Silver snapshot
    says which days it changed, each Gold table how far it is rebuilt (``io/watermarks.py``). A
    crash between a commit and Dagster recording it cannot hide a change from this plan."""
    daily_props = store.info(DAILY_SALES).properties
    built = BuiltFrom.parse(daily_props, ORDERS.qualified_name)
    changes = source_changes(store, ORDERS, built.through, DAILY_SALES_DAYS_COLUMN)
    stale = stale_days(changes, built)
    if not BuiltFrom.recorded(daily_props, ORDERS.qualified_name) and store.current_seq(ORDERS):
        stale = ALL_DAYS  # never built from Silver: every day it holds, whatever history maintenance kept
    if stale is ALL_DAYS:  # a change written by an older version: rebuild every day Silver holds
        stale = {d for d in store.column(ORDERS, DAILY_SALES_DAYS_COLUMN).cast(pa.timestamp("us", tz="UTC")).cast(pa.date32()).to_pylist() if d}
    summary_stale = whole_table_stale(store, CUSTOMER_SUMMARY, WHOLE_TABLE_GOLD[CUSTOMER_SUMMARY])
    others = WHOLE_TABLE_GOLD_FROM_DATABASE if database_sources else {}
    stale_tables = tuple(gold.asset_key for gold, sources in others.items() if whole_table_stale(store, gold, sources))
    version = ",".join(f"{s.qualified_name}={store.current_seq(s)}" for s in (ORDERS, CUSTOMERS, *((PAYMENTS,) if database_sources else ())))
    models = tuple(m.contract.asset_key for m in stale_models(store, dbt_models))
    if models:  # a new SQL version is a new plan too
        version += ",dbt=" + hashlib.sha256(",".join(m.code_version for m in dbt_models).encode()).hexdigest()[:12]
    return GoldPlan(sorted(stale), summary_stale, version, models, stale_tables)


DAILY_SALES_DAYS_COLUMN = "created_at"  # gold/daily_sales partition D holds the orders created on D


def publish_requests(plan: GoldPlan, run_key_prefix: str | None = None) -> list[dg.RunRequest]:
    """One publish run per range of consecutive pending report dates; the whole-table Gold assets
    (customer_summary, the dbt models) ride on the first (or run alone when only they are stale)."""
    requests = []
    for i, (first, last) in enumerate(contiguous_ranges(plan.report_dates)):
        selection = [DAILY_SALES.asset_key] + (plan.unpartitioned if i == 0 else [])
        requests.append(
            dg.RunRequest(
                run_key=f"{run_key_prefix}:{plan.silver_version}:{first}:{last}" if run_key_prefix else None,
                job_name=PUBLISH_JOB,
                asset_selection=selection,
                tags={**range_tags(first, last), PIPELINE_TAG: PUBLISH_JOB},
            )
        )
    if not requests and plan.unpartitioned:
        requests.append(
            dg.RunRequest(
                run_key=f"{run_key_prefix}:{plan.silver_version}:summary" if run_key_prefix else None,
                job_name=PUBLISH_JOB,
                asset_selection=plan.unpartitioned,
                tags={PIPELINE_TAG: PUBLISH_JOB},
            )
        )
    return requests
