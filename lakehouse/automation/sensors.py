"""Sensors: new landing files start an ingest run; Silver changes start Gold runs for the changed days."""

import json

import dagster as dg

from lakehouse.automation.planning import (
    INGEST_JOB,
    PUBLISH_JOB,
    ingest_requests,
    new_landing_files,
    plan_gold,
    publish_requests,
)
from lakehouse.io.store_resource import TableStoreResource
from lakehouse.sources.landing import LandingZoneResource


@dg.sensor(job_name=INGEST_JOB, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def landing_sensor(context: dg.SensorEvaluationContext, landing: LandingZoneResource, store: TableStoreResource):
    """Requests ingest runs for landing files it has not requested before.

    The cursor holds the files requested but not yet in Bronze, so it stays small: a file leaves it
    once ingested. Dagster stores the cursor together with the run requests.
    """
    requested = set(json.loads(context.cursor)) if context.cursor else set()
    table_store = store.get_store()
    zone = landing.zone()
    new = new_landing_files(zone, table_store, exclude=requested)
    still_pending = {f.relative_path for f in new_landing_files(zone, table_store)} if requested else set()
    cursor = json.dumps(sorted((requested & still_pending) | {f.relative_path for f in new}))
    if not new:
        return dg.SensorResult(skip_reason=dg.SkipReason("no new landing files"), cursor=cursor)
    context.log.info(f"{len(new)} new landing file(s)")
    return dg.SensorResult(run_requests=ingest_requests(new, run_key_prefix="landing"), cursor=cursor)


@dg.sensor(job_name=PUBLISH_JOB, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def gold_sensor(context: dg.SensorEvaluationContext, store: TableStoreResource):
    """Requests publish runs for exactly the Gold days that Silver changed, read from the tables:
    the run key names the Silver versions planned from, so one plan is requested once."""
    plan = plan_gold(store.get_store())
    requests = publish_requests(plan, run_key_prefix="gold")
    if not requests:
        return dg.SkipReason("Gold is rebuilt through the current Silver versions")
    return dg.SensorResult(run_requests=requests)
