"""The lakehouse code location: assembles assets, jobs and resources for the configured environment."""

from __future__ import annotations

import dagster as dg

from lakehouse.assets import all_assets
from lakehouse.environment import resources_for
from lakehouse.settings import Settings, load_settings

REFRESH_JOB = "refresh"


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or load_settings()
    refresh = dg.define_asset_job(REFRESH_JOB, selection=dg.AssetSelection.all(), description="Bring every table up to date.")
    return dg.Definitions(
        assets=all_assets(),
        jobs=[refresh],
        resources=resources_for(settings),
        # One process for the whole run: the multiprocess executor would start a process, and a
        # JVM, for every Spark step (about 1.5 s + 3-6 s each) for tables that take well under that.
        executor=dg.in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
