"""Turns a DataFrame function into a lakehouse asset, registered so any runner can find it by key.

    @transformation(target=ORDERS, sources={"orders_raw": ORDERS_RAW})
    def orders(orders_raw: DataFrame) -> DataFrame: ...

The function sees only Spark DataFrames: where it runs (this process, Glue, EMR Serverless) and
where tables live are the compute resource's and the table store's business.
"""


import contextlib
import hashlib
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg

from lakehouse.automation.partitions import PartitionRangeError
from lakehouse.contracts.model import ContractViolation, TableContract
from lakehouse.io.bronze_files import LegacyBronzeError
from lakehouse.io.io_manager import CODE_VERSION_KEY, LakehouseIOManager
from lakehouse.io.watermarks import LegacyWatermarkError
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


@contextlib.contextmanager
def permanent_errors_fail_at_once() -> Iterator[None]:
    """Inside, a PERMANENT_ERRORS error raises PermanentFailure instead (with it as the cause)."""
    try:
        yield
    except PERMANENT_ERRORS as error:
        raise PermanentFailure(error) from error


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


@dataclass(frozen=True)
class Transformation:
    target: TableContract
    sources: dict[str, TableContract]
    fn: Callable
    code_version: str
    # For a target partitioned by day: (source name, timestamp column) such that target partition D
    # is computed from exactly the source rows whose column falls on UTC day D.
    partition_source: tuple[str, str] | None = None
    # For a target fed from Bronze: counts the records of the new Bronze input and how many of them
    # are invalid, e.g. lambda orders_raw: {"read": ..., "rejected": ...}. Feeds record accounting.
    accounting: Callable | None = None
    # Tables whose write must publish first, in the same run: a quarantine table follows its Silver
    # table, so a blocked Silver audit publishes none of the batch anywhere (Dagster skips what
    # depends on an asset whose blocking check failed).
    after: tuple[TableContract, ...] = ()

    @property
    def key(self) -> str:
        return self.target.asset_key.to_user_string()


_REGISTRY: dict[str, Transformation] = {}


def transformation(
    *,
    target: TableContract,
    sources: dict[str, TableContract],
    partition_source: tuple[str, str] | None = None,
    accounting: Callable | None = None,
    after: tuple[TableContract, ...] = (),
) -> Callable[[Callable], Transformation]:
    """Declare ``fn`` as the transformation that produces ``target`` from ``sources``.

    Bronze sources are read incrementally: only the Bronze batches the target has not applied yet.
    """

    def register(fn: Callable) -> Transformation:
        params = list(inspect.signature(fn).parameters)
        if sorted(params) != sorted(sources):
            raise TypeError(f"transformation {fn.__name__} takes {params} but declares sources {sorted(sources)}")
        if partition_source:
            name, column = partition_source
            if name not in sources or not target.partition_by:
                raise TypeError(f"transformation {fn.__name__}: partition_source needs a partitioned target and a declared source")
            sources[name].column(column)
        digest = _code_version(fn, target, sources)
        t = Transformation(
            target=target, sources=dict(sources), fn=fn, code_version=digest, partition_source=partition_source, accounting=accounting,
            after=tuple(after),
        )
        if t.key in _REGISTRY and _REGISTRY[t.key].fn.__qualname__ != fn.__qualname__:
            raise ValueError(f"two transformations produce {t.key}")
        _REGISTRY[t.key] = t
        return t

    return register


def _code_version(fn: Callable, target: TableContract, sources: dict[str, TableContract]) -> str:
    """Changes whenever the logic or a contract changes: hashes the function's module, the
    lakehouse modules that module uses (helpers such as validation rules) and the contracts."""
    module = inspect.getmodule(fn)
    used = {module}
    for value in vars(module).values():
        owner = inspect.getmodule(value) if not inspect.ismodule(value) else value
        if owner is not None and owner.__name__.startswith("lakehouse.") and owner.__name__ != __name__:
            used.add(owner)
    parts = [inspect.getsource(m) for m in sorted(used, key=lambda m: m.__name__)]
    parts += [c.model_dump_json() for c in (target, *sources.values())]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def registered(asset_key: str) -> Transformation:
    """The transformation that produces ``asset_key`` (e.g. "silver/orders")."""
    try:
        return _REGISTRY[asset_key]
    except KeyError:
        raise KeyError(f"no transformation produces {asset_key}; known: {', '.join(sorted(_REGISTRY))}") from None


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
    """The Dagster asset that runs ``t`` on whichever compute resource is configured, retried on
    transient failures (TRANSIENT_RETRY_POLICY unless ``asset_kwargs`` gives a ``retry_policy``)."""
    from lakehouse.checks.specs import check_results, check_specs
    from lakehouse.resources.compute import SparkCompute

    asset_kwargs.setdefault("retry_policy", TRANSIENT_RETRY_POLICY)

    @dg.asset(
        key=t.target.asset_key,
        deps=[s.asset_key for s in (*t.sources.values(), *t.after)],
        description=t.target.description,
        metadata=table_metadata(t.target, t.code_version),
        code_version=t.code_version,
        kinds={"spark", "iceberg"},
        group_name=t.target.layer.value,
        io_manager_key=IO_MANAGER_KEY,
        partitions_def=partitions_def if t.partition_source else None,
        backfill_policy=dg.BackfillPolicy.single_run() if t.partition_source else None,
        check_specs=check_specs(t.target),
        **asset_kwargs,
    )
    def _asset(context: dg.AssetExecutionContext, compute: SparkCompute):
        with permanent_errors_fail_at_once():  # the write's own are FailFastIOManager's
            result = compute.run(context, t)
        if isinstance(result, dg.MaterializeResult):  # ran remotely: the remote side reported everything
            yield result
            return
        yield dg.Output(result)  # the IO manager writes, audits and publishes here
        yield from check_results(context.run_id, t.target.asset_key)

    return _asset
