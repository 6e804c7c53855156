"""Transient failures are retried where they happen and permanent ones fail at once: the SQLite
catalog waits for another process's lock, and the assets' Dagster retry policy reruns a step that
failed on something transient but never one that broke its contract or a setting.
(S3 and Glue requests: lakehouse_tests/aws/test_retries.py.)"""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

import dagster as dg
import pytest
from pyiceberg.exceptions import CommitFailedException

from lakehouse.assets.transformation import (
    TRANSIENT_RETRY_POLICY,
    FailFastIOManager,
    PermanentFailure,
    Transformation,
    transformation_asset,
)
from lakehouse.contracts.model import ContractViolation, Layer
from lakehouse.contracts.tables import ORDERS
from lakehouse.definitions import build_definitions
from lakehouse.environment import CATALOG_BUSY_TIMEOUT_SECONDS, local_store, resources_for
from lakehouse.io.arrow_store import ArrowTableStore
from lakehouse.io.aws import AwsSetupError
from lakehouse.io.table_store import CommitStamp
from lakehouse.io.table_write import TableWrite
from lakehouse.resources.compute import SparkCompute, step_of
from lakehouse.settings import Settings
from lakehouse_tests.io.cdc import batch, event, state

STAMP = CommitStamp(run_id="run-0001", asset_key="silver/orders")
# Python's sqlite3 waits 5 s for a lock by default: a lock held longer than that gets through
# only with the catalog's own, longer busy timeout.
PYSQLITE_DEFAULT_TIMEOUT = 5.0
HOLD_SECONDS = PYSQLITE_DEFAULT_TIMEOUT + 1.5


# ---- SQLite catalog: busy timeout --------------------------------------------------------------
class LockHolder(threading.Thread):
    """Another connection (as another process would) holding an exclusive lock on the catalog file
    for ``seconds``, then releasing it."""

    def __init__(self, path, seconds: float):
        super().__init__(daemon=True)
        self.path, self.seconds = path, seconds
        self.locked, self.released = threading.Event(), threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            try:
                db.execute("BEGIN EXCLUSIVE")
                self.locked.set()
                self.released.wait(self.seconds)  # holds the lock this long (or until told to let go)
                db.execute("ROLLBACK")
            finally:
                db.close()
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc
            self.locked.set()


def test_the_catalog_waits_for_a_lock_another_connection_holds_longer_than_sqlites_default(tmp_path):
    assert CATALOG_BUSY_TIMEOUT_SECONDS > HOLD_SECONDS
    settings = Settings(home=tmp_path / "lh")
    store = local_store(settings).get_store()
    store.merge(ORDERS, batch(event("a", 1)), STAMP)  # the catalog and the table exist
    holder = LockHolder(settings.catalog_path, HOLD_SECONDS)
    holder.start()
    try:
        assert holder.locked.wait(30) and holder.error is None, holder.error
        started = time.monotonic()
        # A commit (the catalog row of the table is updated) while the file is locked.
        result = store.merge(ORDERS, batch(event("b", 2)), STAMP)
        waited = time.monotonic() - started
    finally:
        holder.released.set()
        holder.join(30)
    assert not holder.is_alive() and holder.error is None, holder.error
    assert result.committed and state(store.read(ORDERS)) == {"a": ("placed", 1), "b": ("placed", 2)}
    # It got through by waiting for the lock, not because the lock was not in its way.
    assert waited >= PYSQLITE_DEFAULT_TIMEOUT, waited


# ---- Dagster retry policy ----------------------------------------------------------------------
ATTEMPTS: list[int] = []  # the retry number of each attempt of the test asset (in-process runs)


class ArrowCompute(SparkCompute):
    """Returns Arrow data without Spark; ``fail`` names what the asset's own code raises, if anything."""

    fail: str = ""
    bad_output: bool = False

    def run(self, context: dg.AssetExecutionContext, t: Transformation) -> Any:
        ATTEMPTS.append(context.retry_number)
        if self.fail == "setting":
            raise AwsSetupError("S3 bucket 'lakehouse-silver-dev' (silver tables, LAKEHOUSE_SILVER_BUCKET) does not exist")
        if self.fail == "transient" and context.retry_number == 0:
            raise OSError("When getting information for key 'x': AWS Error SLOW_DOWN (HTTP status 503)")
        data = batch(event("a", 1))
        output = TableWrite(data.drop_columns(["currency"]) if self.bad_output else data)
        return self.writer.write(t.target, output, step_of(context, t).write, context.log).materialize_result()


def _orders_asset(**asset_kwargs) -> dg.AssetsDefinition:
    t = Transformation(target=ORDERS, sources={}, fn=lambda: None, code_version="test")
    return transformation_asset(t, **asset_kwargs)


def _materialize(settings: Settings, compute: dict, instance=None, compute_class=ArrowCompute, **asset_kwargs) -> dg.ExecuteInProcessResult:
    """Materialize the test asset with compute_class(**compute), on the environment's writer."""
    ATTEMPTS.clear()
    resources = resources_for(settings)
    resources["compute"] = compute_class(writer=resources["compute"].writer, **compute)
    return dg.materialize([_orders_asset(**asset_kwargs)], resources=resources, raise_on_error=False, instance=instance)


def _events(result, kind: str) -> list:
    return [e for e in result.all_events if e.event_type_value == kind]


def test_every_silver_and_gold_asset_carries_the_transient_retry_policy(tmp_path):
    defs = build_definitions(Settings(home=tmp_path / "lh"))
    transformed = [
        a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and any(k.path[0] != Layer.bronze.value for k in a.keys)
    ]
    assert len(transformed) == 9  # six Python assets, the dbt models' multi-asset, maintenance of Silver and Gold
    for assets_def in transformed:
        assert assets_def.op.retry_policy == TRANSIENT_RETRY_POLICY, assets_def.keys
    assert TRANSIENT_RETRY_POLICY.max_retries >= 1 and TRANSIENT_RETRY_POLICY.backoff is dg.Backoff.EXPONENTIAL
    # The environment's IO manager is the one whose permanent errors skip the retries.
    assert isinstance(defs.resources["lakehouse_io_manager"], FailFastIOManager)


@pytest.mark.parametrize(
    ("compute", "error", "message"),
    [
        # raised by the table store inside the write, after the transformation returned
        ({"bad_output": True}, ContractViolation, "silver/orders: output is missing column(s) currency"),
        # raised by the asset's own code (getting the store checks the AWS setup)
        ({"fail": "setting"}, AwsSetupError, "S3 bucket 'lakehouse-silver-dev'"),
    ],
    ids=["contract-violation-in-the-write", "aws-setup-error-in-the-asset"],
)
def test_a_permanent_error_fails_the_step_at_once_without_retries(tmp_path, capsys, compute, error, message):
    from lakehouse.cli import report_run

    settings = Settings(home=tmp_path / "lh")
    with dg.DagsterInstance.ephemeral() as instance:
        result = _materialize(settings, compute, instance)  # with TRANSIENT_RETRY_POLICY
        capsys.readouterr()
        report_run(result, instance, settings=settings)
    assert not result.success
    # The CLI's one line for the step is the error's own message, as without retries.
    step_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("  step ")]
    assert len(step_lines) == 1 and step_lines[0].startswith("  step silver__orders failed in ") and message in step_lines[0], step_lines
    assert ATTEMPTS == [0]
    assert _events(result, "STEP_UP_FOR_RETRY") == [] and _events(result, "STEP_RESTARTED") == []
    (failure,) = _events(result, "STEP_FAILURE")
    info = failure.step_failure_data.error
    assert info.cls_name == PermanentFailure.__name__
    # The error it stands for is its cause: what the CLI prints (the innermost cause's message).
    assert info.cause is not None and info.cause.cls_name == error.__name__ and message in info.cause.message
    assert local_store(settings).get_store().read(ORDERS).num_rows == 0  # nothing published


def test_a_transient_error_of_the_asset_is_retried_and_the_step_succeeds(tmp_path):
    settings = Settings(home=tmp_path / "lh")
    fast = dg.RetryPolicy(max_retries=TRANSIENT_RETRY_POLICY.max_retries)  # the same retries, no waits
    result = _materialize(settings, {"fail": "transient"}, retry_policy=fast)
    assert result.success
    assert ATTEMPTS == [0, 1]
    assert len(_events(result, "STEP_UP_FOR_RETRY")) == 1 and len(_events(result, "STEP_RESTARTED")) == 1
    assert state(local_store(settings).get_store().read(ORDERS)) == {"a": ("placed", 1)}


def test_a_transient_error_of_the_write_is_retried_and_the_step_succeeds(tmp_path, monkeypatch):
    """A commit conflict that outlasted the store's own retries: the IO manager passes it on as it is."""
    settings = Settings(home=tmp_path / "lh")
    original = ArrowTableStore.write
    conflicts: list[str] = []

    def write(self, contract, *args, **kwargs):
        if contract == ORDERS and not conflicts:
            conflicts.append(contract.name)
            raise CommitFailedException("silver.orders: main moved while writing; run the write again")
        return original(self, contract, *args, **kwargs)

    monkeypatch.setattr(ArrowTableStore, "write", write)
    fast = dg.RetryPolicy(max_retries=TRANSIENT_RETRY_POLICY.max_retries)
    result = _materialize(settings, {}, retry_policy=fast)
    assert result.success and conflicts == ["orders"]
    assert ATTEMPTS == [0, 1] and len(_events(result, "STEP_UP_FOR_RETRY")) == 1
    assert state(local_store(settings).get_store().read(ORDERS)) == {"a": ("placed", 1)}


def test_retries_are_bounded_by_the_policy(tmp_path):
    settings = Settings(home=tmp_path / "lh")

    class AlwaysThrottled(ArrowCompute):
        def run(self, context, t):
            ATTEMPTS.append(context.retry_number)
            raise OSError("AWS Error SLOW_DOWN (HTTP status 503)")

    fast = dg.RetryPolicy(max_retries=TRANSIENT_RETRY_POLICY.max_retries)
    result = _materialize(settings, {}, compute_class=AlwaysThrottled, retry_policy=fast)
    assert not result.success
    assert ATTEMPTS == list(range(TRANSIENT_RETRY_POLICY.max_retries + 1))
    (failure,) = _events(result, "STEP_FAILURE")
    assert "Exceeded max_retries" in failure.step_failure_data.error.message
