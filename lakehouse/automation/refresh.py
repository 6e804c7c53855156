"""`lakehouse refresh`: ingest new landing days, then publish the Gold days Silver changed.

Every step is a Dagster run in the given instance, so it shows in the UI like a sensor's run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg

from lakehouse.automation.partitions import check_days, daily_partitions
from lakehouse.automation.planning import INGEST_JOB, PUBLISH_JOB, ingest_requests, new_landing_files, plan_gold, publish_requests
from lakehouse.contracts.model import Layer
from lakehouse.contracts.tables import ALL_TABLES
from lakehouse.settings import Settings

TRIGGER_TAG = "lakehouse/trigger"


def ingest_job() -> dg.JobDefinition:
    """The ingest job, rebuilt from the code location (a reconstructable target for execute_job)."""
    from lakehouse.definitions import build_definitions

    return build_definitions().resolve_job_def(INGEST_JOB)


def publish_job() -> dg.JobDefinition:
    from lakehouse.definitions import build_definitions

    return build_definitions().resolve_job_def(PUBLISH_JOB)


@dataclass
class RefreshResult:
    runs: list = field(default_factory=list)  # JobExecutionResult, in order

    @property
    def success(self) -> bool:
        return all(r.success for r in self.runs)


def refresh(settings: Settings, instance: dg.DagsterInstance, trigger: str = "cli") -> RefreshResult:
    """Raises PartitionRangeError (naming the day and setting) before running anything out of range."""
    from lakehouse.environment import resources_for

    resources = resources_for(settings)
    partitions = daily_partitions(settings.partitions_start)
    new = new_landing_files(resources["landing"].zone(), resources["store"].get_store())
    check_days({f.dt for f in new}, partitions, "landing day")
    if new:  # Silver will run Spark: start it while the ingest run is set up
        resources["compute"].warm_up()
    outcome = RefreshResult()
    silver_only = [c.asset_key for c in ALL_TABLES if c.layer is Layer.silver]
    # Silver runs even with nothing landed: it also applies Bronze batches an interrupted run left.
    for request in ingest_requests(new) or [None]:
        tags = {**(request.tags if request else {}), TRIGGER_TAG: trigger}
        selection = None if request else silver_only
        outcome.runs.append(dg.execute_job(dg.reconstructable(ingest_job), instance=instance, tags=tags, asset_selection=selection))
    if not outcome.success:
        return outcome
    plan = plan_gold(instance)
    check_days(plan.report_dates, partitions, "report date")
    for request in publish_requests(plan):
        outcome.runs.append(
            dg.execute_job(
                dg.reconstructable(publish_job),
                instance=instance,
                tags={**request.tags, TRIGGER_TAG: trigger},
                asset_selection=request.asset_selection,
            )
        )
    return outcome
