"""Schedules: hourly at minute 15 UTC, ingest whatever landed and was not ingested (a fallback for
the sensors); daily at 03:00 UTC, table maintenance."""

import dagster as dg

from lakehouse.automation.partitions import PartitionsResource
from lakehouse.automation.planning import (
    DATABASE_INGEST_JOB,
    INGEST_JOB,
    MAINTENANCE_JOB,
    PIPELINE_TAG,
    in_partitions,
    ingest_requests,
    new_landing_files,
    silver_behind,
    silver_catch_up_request,
)
from lakehouse.io.store_resource import TableStoreResource
from lakehouse.sources.landing import LandingZoneResource

INGEST_CRON = "15 * * * *"


@dg.schedule(job_name=INGEST_JOB, cron_schedule=INGEST_CRON, execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING)
def ingest_schedule(
    context: dg.ScheduleEvaluationContext, landing: LandingZoneResource, store: TableStoreResource, partitions: PartitionsResource
):
    """Catches anything the landing sensor missed (sensor off, a failed run, a file landed in an old
    day's folder): no cursor, it compares the whole landing zone with Bronze, and Silver with Bronze.
    A landing file is appended at most once whoever runs at the same time (io/bronze_files.py)."""
    table_store = store.get_store()
    new = in_partitions(new_landing_files(landing.zone(), table_store), partitions, context.log.warning)
    key = f"schedule:{context.scheduled_execution_time.isoformat()}"
    if new:
        return ingest_requests(new, run_key_prefix=key)
    behind = silver_behind(table_store)
    if behind:
        return [silver_catch_up_request(behind, run_key_prefix=key)]
    return dg.SkipReason("every landing file is in Bronze and Silver has applied all of Bronze")


# Daily, at an hour when few files land: maintenance commits beside concurrent writers (compaction
# re-plans when a merge commits first), but a quiet hour makes such races rare.
MAINTENANCE_CRON = "0 3 * * *"

maintenance_schedule = dg.ScheduleDefinition(
    name="maintenance_schedule",
    job_name=MAINTENANCE_JOB,
    cron_schedule=MAINTENANCE_CRON,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    tags={PIPELINE_TAG: MAINTENANCE_JOB},
    description="Daily at 03:00 UTC: compact, expire and clean the Silver and Gold tables under their contracts' policies.",
)


# The database sources are read for their changes (no listing can tell what is new): every 15 minutes.
DATABASE_INGEST_CRON = "*/15 * * * *"

database_ingest_schedule = dg.ScheduleDefinition(
    name="database_ingest_schedule",
    job_name=DATABASE_INGEST_JOB,
    cron_schedule=DATABASE_INGEST_CRON,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    tags={PIPELINE_TAG: DATABASE_INGEST_JOB},
    description="Every 15 minutes: extract the database sources' changes into Bronze and merge them into Silver.",
)
