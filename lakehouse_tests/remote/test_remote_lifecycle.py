"""What users of remote Spark hit, on the local emulation (lakehouse.remote.emulator): a step with
nothing new submits no job, a failing transformation's remote error reaches the Dagster step, and
terminating a run stops its job. (The whole pipeline on Glue and EMR Serverless: test_pipeline.py.)"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest
from dagster_aws.pipes import PipesEMRServerlessClient, PipesGlueClient

from lakehouse.assets.transformation import transformation_asset
from lakehouse.contracts.tables import ORDERS
from lakehouse.contracts.transformations import registered
from lakehouse.definitions import build_definitions
from lakehouse.remote.emulator import GLUE_ROLE, emulated_aws, provision
from lakehouse.resources.release import current_release
from lakehouse.resources.remote_protocol import DRIVER_KEY
from lakehouse.settings import load_settings
from lakehouse.sources.sample import land_sample
from lakehouse_tests.aws.server import LAKEHOUSE_VARIABLES, REGION, MotoAws, aws_test_env
from lakehouse_tests.conftest import ICEBERG_JARS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ICEBERG_JARS, reason="the emulated jobs need the Iceberg Spark runtime in .jars"),
]
JOB_START_TIMEOUT = 180  # a job's JVM starts in seconds; bounded so a broken emulation fails the test
DAY = "2026-01-01"


# The driver, running a silver/orders that fails as a bug in a transformation would.
BROKEN_DRIVER = textwrap.dedent("""
    import dataclasses
    import lakehouse.assets
    from lakehouse.contracts import transformations
    from lakehouse.remote import driver

    def broken(orders_raw):
        raise ValueError("orders: cannot parse amount 'twelve' (a bug in the transformation)")

    orders = transformations.registered("silver/orders")
    transformations._REGISTRY["silver/orders"] = dataclasses.replace(orders, fn=broken)
    driver.main()
""")


@pytest.fixture
def remote(tmp_path, monkeypatch):
    """An emulated AWS with one environment provisioned (buckets, databases, driver, Glue job, EMR
    application), its LAKEHOUSE_* variables set with LAKEHOUSE_COMPUTE=glue, and one landed day."""
    aws_test_env(monkeypatch)
    for name in LAKEHOUSE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with emulated_aws(region=REGION) as (endpoint, runner):
        aws = MotoAws(endpoint)
        env = aws.create_environment()
        for name, value in {**env.variables, "LAKEHOUSE_COMPUTE": "glue"}.items():
            monkeypatch.setenv(name, value)
        for name, value in provision(load_settings(), endpoint).items():
            monkeypatch.setenv(name, value)
        landing = tmp_path / "landing"
        aws.upload(landing, land_sample(landing, seed=3, days=1, orders_per_day=10), load_settings().landing_root)
        yield aws, runner


def _assets(defs: dg.Definitions, *keys: str) -> list[dg.AssetsDefinition]:
    wanted = {dg.AssetKey.from_user_string(k) for k in keys}
    return [a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and wanted.intersection(a.keys)]


def _ingest_bronze(defs: dg.Definitions) -> None:
    result = dg.materialize(_assets(defs, "bronze/orders_raw"), resources=defs.resources, partition_key=DAY)
    assert result.success


def test_a_step_with_no_new_bronze_data_submits_no_job(remote):
    _, runner = remote
    defs = build_definitions(load_settings())
    result = dg.materialize(_assets(defs, "silver/orders"), resources=defs.resources)  # Bronze is empty
    assert result.success and runner.processes == []
    (event,) = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert metadata["new_bronze_files"] == 0 and metadata["outcome"] == "no new data" and metadata["committed"] is False
    # Its checks say they ran on nothing, as a local step's do.
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.metadata["evaluated_rows"].value == 0 for c in checks)


def test_a_failing_transformation_shows_the_remote_error_in_the_step(remote, tmp_path, monkeypatch):
    aws, runner = remote
    settings = load_settings()
    # A Glue job whose driver runs a silver/orders that fails, as a bug in a transformation would.
    script = BROKEN_DRIVER
    artifacts = settings.bucket("artifacts")
    aws.client("s3").put_object(Bucket=artifacts, Key="driver/broken.py", Body=script.encode())
    aws.client("glue").create_job(
        Name="lakehouse-broken", Role=GLUE_ROLE, GlueVersion="5.1",
        Command={"Name": "glueetl", "ScriptLocation": f"s3://{artifacts}/driver/broken.py", "PythonVersion": "3"},
        ExecutionProperty={"MaxConcurrentRuns": 3},
    )
    monkeypatch.setenv("LAKEHOUSE_GLUE_JOB_NAME", "lakehouse-broken")
    defs = build_definitions(load_settings())
    _ingest_bronze(defs)
    # Without the retry policy: a remote failure is retried as a local one would be (ValueError is not permanent).
    asset = transformation_asset(registered("silver/orders"), retry_policy=None)
    result = dg.materialize([asset], resources=defs.resources, raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    error = failure.step_failure_data.error
    messages = []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    text = "\n".join(messages)
    assert "Glue job lakehouse-broken run jr_" in text and "ended FAILED" in text, text
    assert "ValueError: orders: cannot parse amount 'twelve'" in text, text
    # and where to look: the run's log streams and its console page
    run_id = re.search(r"run (jr_\w+) ended", text).group(1)
    assert f"logs: CloudWatch /aws-glue/jobs/output and /error, stream {run_id}" in text, text
    assert f"gluestudio/home?region={REGION}#/job/lakehouse-broken/run/{run_id}" in text, text
    assert runner.processes and all(p.glue_state == "FAILED" for p in runner.processes)
    assert _orders_rows(defs) == 0  # nothing was published


def _error_text(result) -> str:
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    error, messages = failure.step_failure_data.error, []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    return "\n".join(messages)


def test_a_failing_transformation_on_emr_serverless_shows_the_remote_error_in_the_step(remote, monkeypatch):
    aws, runner = remote
    monkeypatch.setenv("LAKEHOUSE_COMPUTE", "emr-serverless")
    settings = load_settings()
    release = current_release(settings.bucket("artifacts"))
    # This release's driver, as the job runs' entry point, is the broken one.
    aws.client("s3").put_object(Bucket=release.bucket, Key=f"{release.prefix}/driver.py", Body=BROKEN_DRIVER.encode())
    defs = build_definitions(settings)
    _ingest_bronze(defs)
    result = dg.materialize([transformation_asset(registered("silver/orders"), retry_policy=None)], resources=defs.resources, raise_on_error=False)
    assert not result.success
    text = _error_text(result)
    assert "ended FAILED" in text and "ValueError: orders: cannot parse amount 'twelve'" in text, text
    assert "logs: CloudWatch /aws/emr-serverless, stream /applications/" in text, text
    assert [p.emr_state for p in runner.processes] == ["FAILED"]
    assert _orders_rows(defs) == 0


def _orders_rows(defs: dg.Definitions) -> int:
    return defs.resources["store"].get_store().info(ORDERS).row_count


@dataclasses.dataclass(frozen=True)
class Service:
    """What the lifecycle tests need to know of one remote service."""

    compute: str  # LAKEHOUSE_COMPUTE
    running: str
    stopped: str  # the state a terminated run's job ends in
    succeeded: str
    stop_message: str  # what the dagster-aws Pipes client logs when it stops the job
    state: Callable[[object], str]  # an emulated job's state, as the service reports it
    wait: tuple[type, str]  # the Pipes client's method that awaits the job


GLUE = Service("glue", "RUNNING", "STOPPED", "SUCCEEDED", "Successfully stopped Glue job run", lambda job: job.glue_state,
               (PipesGlueClient, "_wait_for_job_run_completion"))
EMR = Service("emr-serverless", "RUNNING", "CANCELLED", "SUCCESS", "[pipes] Terminating EMR Serverless job run", lambda job: job.emr_state,
              (PipesEMRServerlessClient, "_wait_for_completion"))


@pytest.mark.parametrize("service", [GLUE, EMR], ids=lambda s: s.compute)
def test_messages_arrive_while_the_job_runs_and_terminating_the_run_stops_it(remote, tmp_path, monkeypatch, service):
    aws, runner = remote
    monkeypatch.setenv("LAKEHOUSE_COMPUTE", service.compute)
    defs = build_definitions(load_settings())
    _ingest_bronze(defs)
    dagster_home = tmp_path / "dagster_home_cli"
    dagster_home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "materialize.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "lakehouse.definitions", "--select", "silver/orders"],
            env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + JOB_START_TIMEOUT
        while not runner.processes and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.5)
        assert runner.processes, Path(log).read_text()[-3000:]
        job = runner.processes[0]
        # Messages reach the run while the job runs: the driver's first one (through S3) is there
        # before the job ends.
        while "external process successfully opened dagster pipes" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "external process successfully opened dagster pipes" in log.read_text(), log.read_text()[-3000:]
        assert service.state(job) == service.running
        process.send_signal(signal.SIGINT)  # Ctrl-C: Dagster terminates the run, the client stops the job
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while job.ended is None and time.monotonic() < deadline:
        time.sleep(0.5)
    output = Path(log).read_text()
    assert service.state(job) == service.stopped, output[-3000:]
    assert job.process.poll() is not None  # the job's own process is gone
    assert service.stop_message in output, output[-3000:]
    assert _orders_rows(defs) == 0


@pytest.mark.parametrize("service", [GLUE, EMR], ids=lambda s: s.compute)
def test_a_retried_step_awaits_the_job_its_first_attempt_started(remote, monkeypatch, service):
    _, runner = remote
    monkeypatch.setenv("LAKEHOUSE_COMPUTE", service.compute)
    defs = build_definitions(load_settings())
    _ingest_bronze(defs)
    # The first attempt loses its connection while its job runs (a transient error in the Dagster
    # process, which the retry policy retries); the job itself goes on.
    client_class, method = service.wait
    original = getattr(client_class, method)
    lost: list[object] = []

    def connection_lost_once(self, *args):
        if not lost:
            lost.append(args)
            raise ConnectionError("Connection reset by peer while polling the service's endpoint")
        return original(self, *args)

    monkeypatch.setattr(client_class, method, connection_lost_once)
    asset = transformation_asset(registered("silver/orders"), retry_policy=dg.RetryPolicy(max_retries=1))
    result = dg.materialize([asset], resources=defs.resources)
    assert result.success and len(lost) == 1
    assert len(runner.processes) == 1 and service.state(runner.processes[0]) == service.succeeded  # started once
    (event,) = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert metadata["reattached_job_run"] == runner.processes[0].job_run_id and metadata["reattached_job_state"] == service.succeeded
    # It planned after the earlier job ended: that job applied the batch, so nothing was left to run.
    assert metadata["new_bronze_files"] == 0 and metadata["outcome"] == "no new data"
    assert _orders_rows(defs) == metadata["dagster/row_count"] > 0


# The real driver, in a job where reading a source through Arrow (rows through the driver's
# Python, not Spark's readers) fails the job.
SPARK_READS_DRIVER = textwrap.dedent("""
    from lakehouse.remote import driver
    from lakehouse.resources import transformation_run

    def through_arrow(*args, **kwargs):
        raise AssertionError("the job read a source through Arrow, not with Spark")

    transformation_run.arrow_to_spark = through_arrow
    driver.main()
""")


def test_a_remote_job_reads_bronze_on_s3_with_spark(remote):
    aws, runner = remote
    settings = load_settings()
    # The Glue job's script (terraform's, the same for every release) is this driver.
    aws.client("s3").put_object(Bucket=settings.bucket("artifacts"), Key=DRIVER_KEY, Body=SPARK_READS_DRIVER.encode())
    defs = build_definitions(settings)
    _ingest_bronze(defs)
    result = dg.materialize([transformation_asset(registered("silver/orders"), retry_policy=None)], resources=defs.resources, raise_on_error=False)
    assert result.success, _error_text(result)
    assert [p.glue_state for p in runner.processes] == ["SUCCEEDED"]
    (event,) = result.get_asset_materialization_events()
    assert event.materialization.metadata["records_read"].value > 0
    assert _orders_rows(defs) > 0


def test_a_transformation_pinned_to_local_spark_runs_locally_whatever_the_compute(remote):
    _, runner = remote
    defs = build_definitions(load_settings())  # LAKEHOUSE_COMPUTE=glue
    assert type(defs.resources["compute"]).__name__ == "GlueCompute"
    _ingest_bronze(defs)
    pinned = dataclasses.replace(registered("silver/orders"), engine="local")
    result = dg.materialize([transformation_asset(pinned, retry_policy=None)], resources=defs.resources)
    assert result.success and runner.processes == []  # no Glue job: it ran in this process
    (event,) = result.get_asset_materialization_events()
    assert _orders_rows(defs) == event.materialization.metadata["dagster/row_count"].value > 0
    assert "lakehouse_release" not in event.materialization.metadata
