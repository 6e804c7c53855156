"""What is out of date: landing days with files not yet in Bronze, Gold days Silver has changed.

Shared by `lakehouse refresh`, the sensors and the schedule, so they all agree on what to run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import dagster as dg
import pyarrow as pa

from lakehouse.automation.partitions import contiguous_ranges
from lakehouse.contracts.tables import CUSTOMER_SUMMARY, CUSTOMERS, CUSTOMERS_RAW, DAILY_SALES, ORDERS, ORDERS_RAW
from lakehouse.io.bronze_files import landing_key
from lakehouse.io.table_store import TableStore
from lakehouse.io.watermarks import ALL_DAYS, BuiltFrom, is_stale, source_changes, stale_days
from lakehouse.sources.landing import LandingFile, LandingZone

INGEST_JOB = "ingest"
PUBLISH_JOB = "publish"
PIPELINE_TAG = "lakehouse/pipeline"  # the instance limits concurrent runs per value (dagster.yaml)
BRONZE_BY_SOURCE = {"orders": ORDERS_RAW, "customers": CUSTOMERS_RAW}


def new_landing_files(zone: LandingZone, store: TableStore, exclude: set[str] = frozenset()) -> list[LandingFile]:
    """Landing files not yet appended to Bronze (and not in ``exclude``)."""
    found: list[LandingFile] = []
    for source, contract in BRONZE_BY_SOURCE.items():
        candidates = [f for f in zone.files(source) if f.relative_path not in exclude]
        if candidates:
            done = store.ingested_sources(contract, days={f.dt for f in candidates})
            found += [f for f in candidates if landing_key(f.relative_path) not in done]
    return found


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


def plan_gold(store: TableStore) -> GoldPlan:
    """Gold work implied by Silver changes, read from the tables themselves: each Silver snapshot
    says which days it changed, each Gold table how far it is rebuilt (``io/watermarks.py``). A
    crash between a commit and Dagster recording it cannot hide a change from this plan."""
    built = BuiltFrom.parse(store.info(DAILY_SALES).properties, ORDERS.qualified_name)
    changes = source_changes(store, ORDERS, built.through, DAILY_SALES_DAYS_COLUMN)
    stale = stale_days(changes, built)
    if stale is ALL_DAYS:  # a change written by an older version: rebuild every day Silver holds
        stale = {d for d in store.column(ORDERS, DAILY_SALES_DAYS_COLUMN).cast(pa.timestamp("us", tz="UTC")).cast(pa.date32()).to_pylist() if d}
    summary_props = store.info(CUSTOMER_SUMMARY).properties
    summary_stale = False
    for source in (ORDERS, CUSTOMERS):
        source_built = BuiltFrom.parse(summary_props, source.qualified_name)
        summary_stale |= is_stale(source_changes(store, source, source_built.through), source_built)
    version = ",".join(f"{s.qualified_name}={store.current_seq(s)}" for s in (ORDERS, CUSTOMERS))
    return GoldPlan(sorted(stale), summary_stale, version)


DAILY_SALES_DAYS_COLUMN = "created_at"  # gold/daily_sales partition D holds the orders created on D


def publish_requests(plan: GoldPlan, run_key_prefix: str | None = None) -> list[dg.RunRequest]:
    """One publish run per range of consecutive pending report dates; customer_summary rides on the
    first (or runs alone when only it is stale)."""
    requests = []
    for i, (first, last) in enumerate(contiguous_ranges(plan.report_dates)):
        selection = [DAILY_SALES.asset_key] + ([CUSTOMER_SUMMARY.asset_key] if i == 0 and plan.summary_stale else [])
        requests.append(
            dg.RunRequest(
                run_key=f"{run_key_prefix}:{plan.silver_version}:{first}:{last}" if run_key_prefix else None,
                job_name=PUBLISH_JOB,
                asset_selection=selection,
                tags={**range_tags(first, last), PIPELINE_TAG: PUBLISH_JOB},
            )
        )
    if not requests and plan.summary_stale:
        requests.append(
            dg.RunRequest(
                run_key=f"{run_key_prefix}:{plan.silver_version}:summary" if run_key_prefix else None,
                job_name=PUBLISH_JOB,
                asset_selection=[CUSTOMER_SUMMARY.asset_key],
                tags={PIPELINE_TAG: PUBLISH_JOB},
            )
        )
    return requests
