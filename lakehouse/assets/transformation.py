"""Turns a declared transformation (lakehouse.contracts.transformations) into a lakehouse asset.

The asset's body hands the transformation to the ``compute`` resource, which runs it where it is
configured to (this process, Glue, EMR Serverless) and returns its materialization: the same
metadata and check results wherever it ran.
"""


import contextlib
from collections.abc import Iterator
from typing import Any

import dagster as dg

from lakehouse.automation.partitions import PartitionRangeError
from lakehouse.checks.specs import check_specs
from lakehouse.contracts.model import ContractViolation, TableContract
from lakehouse.contracts.transformations import Transformation, registered, transformation  # noqa: F401 (asset modules' import)
from lakehouse.io.bronze_files import LegacyBronzeError
from lakehouse.io.io_manager import LakehouseIOManager
from lakehouse.io.table_write import CODE_VERSION_KEY
from lakehouse.io.watermarks import LegacyWatermarkError
from lakehouse.resources.compute import SparkCompute
from lakehouse.settings import SettingsError
from lakehouse.sources.landing import LandingError

IO_MANAGER_KEY = "lakehouse_io_manager"

# ---- retries ---------------------------------------------------------------------------------
# A step that failed on something transient runs again: S3 or Glue throttling or 5xx that outlasted
# the requests' own retries (lakehouse.io.aws.REQUEST_ATTEMPTS), a catalog commit conflict that
# outlasted the store's, the SQLite catalog locked longer than its busy timeout, a lost Spark
# executor. A rerun is safe: a write commits atomically, from the watermarks it read, or not at all.
# The waits (exponential, +-5 s: 0-10 s, then 10-20 s) give an outage time to pass.
TRANSIENT_RETRY_POLICY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)

# Errors no rerun can fix, which fail the step at once: the data breaks its table contract, a
# setting, the AWS setup or the landing zone is wrong, a partition is out of range, the home needs
# `lakehouse repair` (the errors the CLI exits 2 for). A blocking check that fails is not retried
# either: Dagster never retries a DagsterAssetCheckFailedError.
PERMANENT_ERRORS: tuple[type[Exception], ...] = (
    ContractViolation, SettingsError, LandingError, PartitionRangeError, LegacyBronzeError, LegacyWatermarkError,
)


class PermanentFailure(dg.Failure):
    """A step failure a retry cannot fix: ``allow_retries=False`` makes Dagster fail the step at once
    whatever its RetryPolicy (Dagster retries any other exception). The error it stands for is its
    ``__cause__``, so the step's error still ends in that error and its message."""

    def __init__(self, error: BaseException):
        super().__init__(description=str(error), allow_retries=False)


class Interrupted(dg.Failure):
    """The run was terminated (or interrupted with Ctrl-C) during the step. Dagster would retry an
    interrupted step under its retry policy; a user who stops a run wants it stopped (a remote
    compute has already stopped its job), so the step fails at once instead."""

    def __init__(self):
        super().__init__(description="the run was terminated during this step; its work was stopped and is not retried", allow_retries=False)


@contextlib.contextmanager
def permanent_errors_fail_at_once() -> Iterator[None]:
    """Inside, a PERMANENT_ERRORS error raises PermanentFailure instead (with it as the cause), and
    an interrupt raises Interrupted."""
    try:
        yield
    except PERMANENT_ERRORS as error:
        raise PermanentFailure(error) from error
    except (dg.DagsterExecutionInterruptedError, KeyboardInterrupt) as interrupt:
        raise Interrupted() from interrupt


class FailFastIOManager(LakehouseIOManager):
    """The lakehouse IO manager, whose permanent errors (a write that breaks its contract, a wrong
    setting) fail the step at once rather than through every retry of the asset's retry policy:
    the write happens here, after the asset's own code has returned its output."""

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        with permanent_errors_fail_at_once():
            super().handle_output(context, obj)

    def load_input(self, context: dg.InputContext) -> Any:
        with permanent_errors_fail_at_once():
            return super().load_input(context)


def table_metadata(contract: TableContract, code_version: str | None = None) -> dict:
    metadata = {
        "dagster/column_schema": contract.column_schema,
        "dagster/table_name": contract.qualified_name,
        "write_mode": contract.mode.value,
    }
    if contract.primary_key:
        metadata["primary_key"] = ", ".join(contract.primary_key)
    if contract.partition_by:
        metadata["partitioned_by"] = ", ".join(contract.partition_by)
    if code_version:
        metadata[CODE_VERSION_KEY] = code_version
    return metadata


def transformation_asset(t: Transformation, partitions_def: dg.PartitionsDefinition | None = None, **asset_kwargs) -> dg.AssetsDefinition:
    """The Dagster asset that runs ``t`` on the configured compute resource (``compute``), or on the
    engine ``t`` pins itself to (``compute_local``, ``compute_glue``, ``compute_emr_serverless``),
    retried on transient failures (TRANSIENT_RETRY_POLICY unless ``asset_kwargs`` gives a ``retry_policy``)."""
    asset_kwargs.setdefault("retry_policy", TRANSIENT_RETRY_POLICY)

    @dg.asset(
        key=t.target.asset_key,
        deps=[s.asset_key for s in (*t.sources.values(), *t.after)],
        description=t.target.description,
        metadata=table_metadata(t.target, t.code_version),
        code_version=t.code_version,
        kinds={"spark", "iceberg"},
        group_name=t.target.layer.value,
        owners=list(t.target.owners),
        tags=t.target.catalog_tags,
        io_manager_key=IO_MANAGER_KEY,
        partitions_def=partitions_def if t.partition_source else None,
        backfill_policy=dg.BackfillPolicy.single_run() if t.partition_source else None,
        check_specs=check_specs(t.target),
        required_resource_keys={t.compute_key},
        **asset_kwargs,
    )
    def _asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        compute: SparkCompute = getattr(context.resources, t.compute_key)
        with permanent_errors_fail_at_once():
            return compute.run(context, t)  # the transformation ran, its output is written and audited

    return _asset
