"""The lakehouse code location: assembles assets, jobs, automation and resources for the environment."""

import dagster as dg

from lakehouse.assets import all_assets
from lakehouse.assets.maintenance import MAINTENANCE_GROUP, maintenance_assets
from lakehouse.automation.planning import INGEST_JOB, MAINTENANCE_JOB, PUBLISH_JOB
from lakehouse.automation.schedules import ingest_schedule, maintenance_schedule
from lakehouse.automation.sensors import gold_sensor, landing_sensor
from lakehouse.checks.accounting import accounting_checks
from lakehouse.environment import resources_for
from lakehouse.settings import Settings, load_settings


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or load_settings()
    ingest = dg.define_asset_job(
        INGEST_JOB,
        selection=dg.AssetSelection.groups("bronze", "silver"),
        description="Append new landing files to Bronze (per landing day) and merge them into Silver.",
    )
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
        assets=[*all_assets(settings.partitions_start, settings.dbt_models_target), *maintenance_assets(settings.dbt_models_target)],
        asset_checks=accounting_checks(),
        jobs=[ingest, publish, maintenance],
        sensors=[landing_sensor, gold_sensor],
        schedules=[ingest_schedule, maintenance_schedule],
        resources=resources_for(settings),
        # One process per run: the multiprocess executor would start a process, and a JVM, for
        # every Spark step (about 1.5 s + 3-6 s each), more than these tables' work; in one
        # process every step shares one JVM.
        executor=dg.in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
