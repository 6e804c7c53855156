"""The lakehouse code location: assembles assets, jobs, automation and resources for the environment."""

import dagster as dg

from lakehouse.assets import all_assets, database_asset_keys
from lakehouse.assets.maintenance import MAINTENANCE_GROUP, maintenance_assets
from lakehouse.automation.planning import DATABASE_INGEST_JOB, INGEST_JOB, MAINTENANCE_JOB, PUBLISH_JOB
from lakehouse.automation.schedules import database_ingest_schedule, ingest_schedule, maintenance_schedule
from lakehouse.automation.sensors import landing_sensor, make_gold_sensor
from lakehouse.checks.accounting import accounting_checks
from lakehouse.environment import resources_for, with_partitions_start
from lakehouse.settings import Settings, load_settings


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = with_partitions_start(settings or load_settings())
    database = dg.AssetSelection.assets(*database_asset_keys()) if settings.database_sources else None
    landing = dg.AssetSelection.groups("bronze", "silver")
    ingest = dg.define_asset_job(
        INGEST_JOB,
        selection=landing - database if database is not None else landing,
        description="Append new landing files to Bronze (per landing day) and merge them into Silver.",
    )
    database_jobs = [
        dg.define_asset_job(
            DATABASE_INGEST_JOB,
            selection=database,
            description="Extract the database sources' changes into Bronze and merge them into Silver.",
        )
    ] if settings.database_sources else []
    publish = dg.define_asset_job(
        PUBLISH_JOB,
        selection=dg.AssetSelection.groups("gold"),
        description="Rebuild the Gold partitions (report dates) that Silver changed.",
    )
    maintenance = dg.define_asset_job(
        MAINTENANCE_JOB,
        selection=dg.AssetSelection.groups(MAINTENANCE_GROUP),
        description="Compact, expire and clean the Silver and Gold tables under their maintenance policies.",
    )
    return dg.Definitions(
        assets=[
            *all_assets(settings.partitions_start, settings.dbt_models_target, settings.database_sources),
            *maintenance_assets(settings.dbt_models_target, settings.database_sources),
        ],
        asset_checks=accounting_checks(settings.database_sources),
        jobs=[ingest, publish, maintenance, *database_jobs],
        sensors=[landing_sensor, make_gold_sensor(settings.database_sources)],
        schedules=[ingest_schedule, maintenance_schedule, *([database_ingest_schedule] if settings.database_sources else [])],
        resources=resources_for(settings),
        # One process per run: the multiprocess executor would start a process, and a JVM, for
        # every Spark step (about 1.5 s + 3-6 s each), more than these tables' work; in one
        # process every step shares one JVM.
        executor=dg.in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
