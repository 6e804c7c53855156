"""A fallback schedule: hourly at minute 15 UTC, ingest whatever landed and was not ingested."""

import dagster as dg

from lakehouse.automation.planning import INGEST_JOB, ingest_requests, new_landing_files
from lakehouse.io.store_resource import TableStoreResource
from lakehouse.sources.landing import LandingZoneResource

INGEST_CRON = "15 * * * *"


@dg.schedule(job_name=INGEST_JOB, cron_schedule=INGEST_CRON, execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING)
def ingest_schedule(context: dg.ScheduleEvaluationContext, landing: LandingZoneResource, store: TableStoreResource):
    """Catches anything the landing sensor missed (sensor off, a failed run): no cursor, it
    compares the landing zone with Bronze itself. Ingest runs are serialized by the run queue
    (tag concurrency limit in dagster.yaml), so a file is never appended twice."""
    new = new_landing_files(landing.zone(), store.get_store())
    if not new:
        return dg.SkipReason("every landing file is already in Bronze")
    return ingest_requests(new, run_key_prefix=f"schedule:{context.scheduled_execution_time.isoformat()}")
