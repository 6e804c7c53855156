"""Sensors: new landing files start an ingest run; Silver changes start Gold runs for the changed days."""

import dataclasses
import datetime as dt
import json

import dagster as dg

from lakehouse.automation.partitions import PartitionsResource
from lakehouse.automation.planning import (
    INGEST_JOB,
    PUBLISH_JOB,
    in_partitions,
    ingest_requests,
    new_landing_files,
    outside_message,
    plan_gold,
    publish_requests,
    silver_behind,
    silver_catch_up_request,
    split_by_partitions,
)
from lakehouse.automation.runs import fail_dead_runs
from lakehouse.io.store_resource import TableStoreResource
from lakehouse.resources.dbt import DbtBuildResource
from lakehouse.sources.landing import LandingZoneResource

# Files land in the folder of the day they arrive (docs/landing-contract.md), so each tick lists only
# the newest landing days it has seen and this many before them; the hourly schedule lists them all.
SENSOR_LOOKBACK_DAYS = 2


@dg.sensor(job_name=INGEST_JOB, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def landing_sensor(
    context: dg.SensorEvaluationContext, landing: LandingZoneResource, store: TableStoreResource, partitions: PartitionsResource
):
    """Requests ingest runs for landing files it has not requested before, and a Silver run when
    Silver is behind Bronze (a Bronze-only backfill, a run that stopped between the two).

    The cursor holds the newest landing day seen and the files requested but not yet in Bronze, so
    it stays small and a tick lists only recent days. Runs whose process is gone are failed first:
    a dead run would hold the run queue's ingest slot for ever.
    """
    fail_dead_runs(context.instance, context.log.warning)
    cursor = json.loads(context.cursor) if context.cursor else {}
    if isinstance(cursor, list):  # the cursor of an older version: files requested
        cursor = {"requested": cursor}
    requested = set(cursor.get("requested", []))
    newest = dt.date.fromisoformat(cursor["newest_day"]) if cursor.get("newest_day") else None
    since = newest - dt.timedelta(days=SENSOR_LOOKBACK_DAYS) if newest else None
    table_store = store.get_store()
    zone = landing.zone()
    pending = new_landing_files(zone, table_store, since=min([since, *(_day(p) for p in requested)]) if since else None)
    new = in_partitions([f for f in pending if f.relative_path not in requested], partitions, context.log.warning)
    still_pending = {f.relative_path for f in pending} & requested
    days = [f.dt for f in pending] + ([newest] if newest else [])
    next_cursor = json.dumps(
        {"newest_day": max(days).isoformat() if days else None, "requested": sorted(still_pending | {f.relative_path for f in new})}
    )
    requests = ingest_requests(new, run_key_prefix="landing")
    if not requests:
        behind = silver_behind(table_store)
        if behind:
            context.log.info(f"Silver behind Bronze: {behind}")
            requests = [silver_catch_up_request(behind, run_key_prefix="silver")]
    if not requests:
        return dg.SensorResult(skip_reason=dg.SkipReason("no new landing files; Silver has applied all of Bronze"), cursor=next_cursor)
    context.log.info(f"{len(new)} new landing file(s)")
    return dg.SensorResult(run_requests=requests, cursor=next_cursor)


def _day(relative_path: str) -> dt.date:
    return dt.date.fromisoformat(relative_path.split("dt=", 1)[1][:10])


def make_gold_sensor(database_sources: bool = False) -> dg.SensorDefinition:
    """The gold sensor; with ``database_sources``, it also rebuilds the Gold tables they feed."""

    @dg.sensor(name="gold_sensor", job_name=PUBLISH_JOB, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
    def gold_sensor(context: dg.SensorEvaluationContext, store: TableStoreResource, partitions: PartitionsResource, dbt: DbtBuildResource):
        """Requests publish runs for exactly the Gold days that Silver changed, read from the tables:
        the run key names the Silver versions planned from, so one plan is requested once. Days
        without a partition are logged and left out."""
        plan = plan_gold(store.get_store(), dbt.models(), database_sources)
        inside, outside = split_by_partitions(plan.report_dates, partitions.definition())
        if outside:
            context.log.warning(outside_message(outside, partitions.definition()))
        requests = publish_requests(dataclasses.replace(plan, report_dates=inside), run_key_prefix="gold")
        if not requests:
            return dg.SkipReason("Gold is rebuilt through the current Silver versions")
        return dg.SensorResult(run_requests=requests)

    return gold_sensor


gold_sensor = make_gold_sensor()
