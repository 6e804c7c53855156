"""`lakehouse refresh`: ingest new landing days, then publish the Gold days Silver changed.

Every step is a Dagster run in the given instance, so it shows in the UI like a sensor's run.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from lakehouse.automation.partitions import check_days, daily_partitions
from lakehouse.automation.planning import (
    DATABASE_INGEST_JOB,
    INGEST_JOB,
    PIPELINE_TAG,
    PUBLISH_JOB,
    ingest_requests,
    new_landing_files,
    outside_message,
    plan_gold,
    publish_requests,
    silver_behind,
    split_by_partitions,
)
from lakehouse.automation.runs import fail_dead_runs, process_tags
from lakehouse.contracts.model import Layer
from lakehouse.contracts.tables import ALL_TABLES
from lakehouse.settings import Settings

TRIGGER_TAG = "lakehouse/trigger"


def job_from_settings(name: str, settings_json: str) -> dg.JobDefinition:
    """Job ``name`` of the code location built from serialised settings: what execute_job rebuilds
    the jobs refresh runs from, so they use the settings refresh planned with."""
    from lakehouse.definitions import build_definitions

    return build_definitions(Settings.model_validate_json(settings_json)).resolve_job_def(name)


def _job(name: str, settings: Settings) -> dg.ReconstructableJob:
    # Every field is serialised, so none is read from the environment again when the job is rebuilt.
    return dg.build_reconstructable_job(__name__, job_from_settings.__name__, reconstructable_args=(name, settings.model_dump_json()))


@dataclass
class RefreshResult:
    runs: list = field(default_factory=list)  # JobExecutionResult, in order

    @property
    def success(self) -> bool:
        """Every run succeeded and no ERROR-severity check failed (blocking or not)."""
        return all(r.success for r in self.runs) and not any(
            not e.passed and e.severity is dg.AssetCheckSeverity.ERROR for r in self.runs for e in r.get_asset_check_evaluations()
        )


def run_config(console_log_level: str | None) -> dict:
    """Run config for the refresh's runs: the level of Dagster's console logger (its event log on
    stderr), or Dagster's default with None. The event log in the instance keeps every event."""
    if console_log_level is None:
        return {}
    return {"loggers": {"console": {"config": {"log_level": console_log_level}}}}


def refresh(
    settings: Settings,
    instance: dg.DagsterInstance,
    trigger: str = "cli",
    log: Callable[[str], object] | None = None,
    console_log_level: str | None = None,
    on_run: Callable[[dg.JobExecutionResult], object] | None = None,
) -> RefreshResult:
    """First marks failed the runs a killed refresh on this host left behind (one ``log`` line
    each). Raises PartitionRangeError (naming the day and setting) before running anything out of range.

    ``console_log_level`` sets Dagster's console logger for the runs (None: Dagster's default);
    ``on_run`` gets each run's result as soon as the run has finished."""
    log = log or logging.getLogger(__name__).warning
    from lakehouse.environment import resources_for, with_partitions_start

    def execute(name: str, **kwargs) -> None:
        result = dg.execute_job(_job(name, settings), instance=instance, run_config=run_config(console_log_level), **kwargs)
        outcome.runs.append(result)
        if on_run is not None:
            on_run(result)

    explicit_start = settings.partitions_start is not None
    settings = with_partitions_start(settings)  # decided once: every run of this refresh partitions alike
    fail_dead_runs(instance, log)
    # Runs execute in this process: its host and pid let a later refresh, or the landing sensor,
    # tell that a run's process is gone.
    process = process_tags()

    resources = resources_for(settings)
    partitions = daily_partitions(settings.partitions_start)
    new = new_landing_files(resources["landing"].zone(), resources["store"].get_store())
    check_days({f.dt for f in new}, partitions, "landing day")
    if new:  # Silver will run Spark: start it while the ingest run is set up
        resources["compute"].warm_up()
    outcome = RefreshResult()
    silver_only = [c.asset_key for c in ALL_TABLES if c.layer is Layer.silver]
    # With nothing landed, Silver still runs if it is behind Bronze (an interrupted run, a
    # Bronze-only backfill); with nothing to do at all, no run is made.
    catch_up = [None] if not new and silver_behind(resources["store"].get_store()) else []
    for request in ingest_requests(new) or catch_up:
        # The Silver-only run is an ingest run too: the run queue must not start another beside it.
        tags = {**(request.tags if request else {PIPELINE_TAG: INGEST_JOB}), TRIGGER_TAG: trigger, **process}
        selection = None if request else silver_only
        execute(INGEST_JOB, tags=tags, asset_selection=selection)
    if not outcome.success:
        return outcome
    if settings.database_sources:  # the database sources' changes are found by reading them: always a run
        execute(DATABASE_INGEST_JOB, tags={PIPELINE_TAG: DATABASE_INGEST_JOB, TRIGGER_TAG: trigger, **process})
        if not outcome.success:
            return outcome
    if not explicit_start:  # Silver may now hold orders created before the first landing day
        settings = with_partitions_start(settings.model_copy(update={"partitions_start": None}))
        partitions = daily_partitions(settings.partitions_start)
    plan = plan_gold(resources["store"].get_store(), resources["dbt"].models(), settings.database_sources)
    inside, outside = split_by_partitions(plan.report_dates, partitions)
    if outside:
        log(outside_message(outside, partitions))
    for request in publish_requests(dataclasses.replace(plan, report_dates=inside)):
        execute(PUBLISH_JOB, tags={**request.tags, TRIGGER_TAG: trigger, **process}, asset_selection=request.asset_selection)
    return outcome
