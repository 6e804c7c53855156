"""What is out of date: landing days with files not yet in Bronze, Gold days Silver has changed.

Shared by `lakehouse refresh`, the sensors and the schedule, so they all agree on what to run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import dagster as dg

from lakehouse.automation.partitions import contiguous_ranges
from lakehouse.contracts.tables import CUSTOMER_SUMMARY, CUSTOMERS, CUSTOMERS_RAW, DAILY_SALES, ORDERS, ORDERS_RAW
from lakehouse.io.table_store import TableStore
from lakehouse.sources.landing import LandingFile, LandingZone

INGEST_JOB = "ingest"
PUBLISH_JOB = "publish"
PIPELINE_TAG = "lakehouse/pipeline"  # the instance limits concurrent runs per value (dagster.yaml)
BRONZE_BY_SOURCE = {"orders": ORDERS_RAW, "customers": CUSTOMERS_RAW}
# Silver materializations report the UTC days of created_at their merge changed, before and after.
CHANGED_DAYS_METADATA = "changed_created_at"
SILVER_RECORDS_CONSIDERED = 500


def new_landing_files(zone: LandingZone, store: TableStore, exclude: set[str] = frozenset()) -> list[LandingFile]:
    """Landing files not yet appended to Bronze (and not in ``exclude``)."""
    found: list[LandingFile] = []
    for source, contract in BRONZE_BY_SOURCE.items():
        candidates = [f for f in zone.files(source) if f.relative_path not in exclude]
        if candidates:
            done = store.ingested_sources(contract, days={f.dt for f in candidates})
            found += [f for f in candidates if f.relative_path not in done]
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
    latest_silver_id: int  # newest Silver materialization considered (a sensor cursor)


def plan_gold(instance: dg.DagsterInstance) -> GoldPlan:
    """Gold work implied by Silver changes, read from the event log (no table scans).

    A report date is pending when the newest Silver orders materialization that changed it is newer
    than that date's newest daily_sales materialization.
    """
    silver = instance.fetch_materializations(ORDERS.asset_key, limit=SILVER_RECORDS_CONSIDERED).records
    changed_at: dict[dt.date, int] = {}
    for record in reversed(silver):  # oldest first, so the newest change wins
        metadata = record.asset_materialization.metadata if record.asset_materialization else {}
        if "committed" in metadata and not metadata["committed"].value:
            continue  # a merge that changed nothing, or whose audit failed (main did not move)
        entry = metadata.get(CHANGED_DAYS_METADATA)
        for day in (entry.value if entry is not None else []) or []:
            changed_at[dt.date.fromisoformat(str(day)[:10])] = record.storage_id
    pending: list[dt.date] = []
    if changed_at:
        built: dict[str, int] = {}
        gold = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=DAILY_SALES.asset_key,
                asset_partitions=[d.isoformat() for d in changed_at],
                after_storage_id=min(changed_at.values()),
            ),
            limit=10_000,
        ).records
        for record in gold:
            built[record.partition_key] = max(built.get(record.partition_key, 0), record.storage_id)
        pending = sorted(d for d, sid in changed_at.items() if built.get(d.isoformat(), 0) < sid)
    changed = {key: _latest_commit_id(instance, key) for key in (ORDERS.asset_key, CUSTOMERS.asset_key)}
    summary = instance.fetch_materializations(CUSTOMER_SUMMARY.asset_key, limit=1).records
    summary_id = summary[0].storage_id if summary else 0
    latest_silver = max(changed.values())
    return GoldPlan(pending, latest_silver > summary_id, latest_silver)


def _latest_commit_id(instance: dg.DagsterInstance, key: dg.AssetKey, look_back: int = 100) -> int:
    """Storage id of the newest materialization of ``key`` that committed a change (0 if none)."""
    for record in instance.fetch_materializations(key, limit=look_back).records:
        committed = record.asset_materialization.metadata.get("committed") if record.asset_materialization else None
        if committed is None or committed.value:
            return record.storage_id
    return 0


def publish_requests(plan: GoldPlan, run_key_prefix: str | None = None) -> list[dg.RunRequest]:
    """One publish run per range of consecutive pending report dates; customer_summary rides on the
    first (or runs alone when only it is stale)."""
    requests = []
    for i, (first, last) in enumerate(contiguous_ranges(plan.report_dates)):
        selection = [DAILY_SALES.asset_key] + ([CUSTOMER_SUMMARY.asset_key] if i == 0 and plan.summary_stale else [])
        requests.append(
            dg.RunRequest(
                run_key=f"{run_key_prefix}:{plan.latest_silver_id}:{first}:{last}" if run_key_prefix else None,
                job_name=PUBLISH_JOB,
                asset_selection=selection,
                tags={**range_tags(first, last), PIPELINE_TAG: PUBLISH_JOB},
            )
        )
    if not requests and plan.summary_stale:
        requests.append(
            dg.RunRequest(
                run_key=f"{run_key_prefix}:{plan.latest_silver_id}:summary" if run_key_prefix else None,
                job_name=PUBLISH_JOB,
                asset_selection=[CUSTOMER_SUMMARY.asset_key],
                tags={PIPELINE_TAG: PUBLISH_JOB},
            )
        )
    return requests
