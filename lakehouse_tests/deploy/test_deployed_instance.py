"""The deployed instance for real, without ECS: deploy/dagster.yaml on a PostgreSQL server
(conftest) with compute logs in S3 of a moto server, only the run launcher swapped for the default
one (runs in processes of the code server); the code server, daemon and webserver started as the
image starts them, from deploy/workspace.yaml. The landing sensor's run is queued, the daemon
SIGKILLed and started again: the run queued before the kill is the one that runs and succeeds,
and no second ingest run is requested for the same files, so the queue, the run keys and the
sensor's cursor were in PostgreSQL, not in the dead process. Runs, event logs and compute logs are
read from where production keeps them (psycopg2, S3); the webserver's GraphQL lists the runs; the
image's health checks pass against the live processes.

Bounded: every wait ends by DEADLINE; all traffic is to 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from lakehouse.contracts.tables import DAILY_SALES
from lakehouse.environment import resources_for
from lakehouse.settings import Settings
from lakehouse.sources.sample import land_sample
from lakehouse_tests.aws.server import AWS_TEST_ENV, AWS_UNSET, REGION, moto_server
from lakehouse_tests.compare import assert_matches
from lakehouse_tests.deploy.conftest import DEPLOY, PROJECT, free_port, load_yaml
from lakehouse_tests.reference import expected_state

pytestmark = pytest.mark.slow
DEADLINE = 300
BIN = Path(sys.executable).parent
LOGS_PREFIX = "compute-logs"
ACTIVE = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]


def instance_config(queue_open: bool) -> dict:
    """deploy/dagster.yaml with the default run launcher (which cannot resume a run, so run
    monitoring must not try); ``queue_open=False`` holds every run in the queue."""
    config = load_yaml(DEPLOY / "dagster.yaml")
    config["run_launcher"] = {"module": "dagster.core.launcher", "class": "DefaultRunLauncher"}
    config["run_monitoring"]["max_resume_run_attempts"] = 0
    if not queue_open:
        config["run_coordinator"]["config"]["max_concurrent_runs"] = 0
    return config


def _start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(args, env=env, cwd=PROJECT, stdin=subprocess.DEVNULL, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def _kill(proc: subprocess.Popen | None, sig=signal.SIGTERM) -> None:
    if proc is None:
        return
    if proc.poll() is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # what is left of its group (run workers, JVMs)
        return
    os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _wait_for(predicate, deadline: float, what: str, logs: list[Path]):
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    tails = "\n".join(f"--- {p.name}\n" + p.read_text(errors="replace")[-3000:] for p in logs if p.exists())
    pytest.fail(f"timed out waiting for {what}\n{tails}")


def _healthy(process: str, env: dict, port: int | None = None) -> bool:
    args = [sys.executable, str(DEPLOY / "healthcheck.py"), process] + (["--port", str(port)] if port else [])
    return subprocess.run(args, env=env, capture_output=True, timeout=60).returncode == 0


def _graphql_runs(port: int):
    query = json.dumps({"query": "{ runsOrError { ... on Runs { results { runId jobName status } } } }"}).encode()
    try:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=query, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as response:
            return json.load(response)["data"]["runsOrError"]["results"]
    except OSError:
        return None


def test_the_deployed_instance_runs_the_pipeline_and_survives_a_killed_daemon(tmp_path, postgres):
    home, dagster_home = tmp_path / "lakehouse", tmp_path / "deployed_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(instance_config(queue_open=False)))
    code_port, web_port = free_port(), free_port()
    workspace = load_yaml(DEPLOY / "workspace.yaml")
    workspace["load_from"][0]["grpc_server"]["port"] = code_port  # the host still comes from the environment
    (tmp_path / "workspace.yaml").write_text(yaml.safe_dump(workspace))
    postgres.create_database("dagster")

    with moto_server() as aws:
        logs_bucket = f"lakehouse-dagster-logs-{uuid.uuid4().hex[:8]}"  # moto's state is shared by the process's servers
        aws.create_bucket(logs_bucket)
        env = {k: v for k, v in os.environ.items() if k not in AWS_UNSET and not k.startswith("LAKEHOUSE_") or k == "LAKEHOUSE_REJECT_RATE_LIMIT"}
        env.update(AWS_TEST_ENV, AWS_REGION=REGION, AWS_ENDPOINT_URL_S3=aws.endpoint, LAKEHOUSE_HOME=str(home), DAGSTER_HOME=str(dagster_home),
                   DAGSTER_COMPUTE_LOGS_BUCKET=logs_bucket, DAGSTER_COMPUTE_LOGS_PREFIX=LOGS_PREFIX, DAGSTER_CODE_SERVER_HOST="127.0.0.1",
                   SPARK_LOCAL_IP="127.0.0.1", PYTHONUNBUFFERED="1", **postgres.environment("dagster"))
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        land_sample(home / "landing", seed=5, days=1, orders_per_day=10)
        deadline = time.monotonic() + DEADLINE
        logs = {name: tmp_path / f"{name}.log" for name in ("code", "daemon1", "daemon2", "web")}
        code = daemon = web = None
        with pytest.MonkeyPatch.context() as mp:
            for name, value in env.items():
                mp.setenv(name, value)
            # The schema is created once, before three processes open the database.
            instance = DagsterInstance.from_config(str(dagster_home))
        try:
            code = _start([str(BIN / "dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", str(code_port), "-m", "lakehouse.definitions"], env, logs["code"])
            _wait_for(lambda: _healthy("code-server", env, code_port), deadline, "the code server's gRPC health check", [logs["code"]])
            workspace_args = ["-w", str(tmp_path / "workspace.yaml")]
            daemon = _start([str(BIN / "dagster-daemon"), "run", *workspace_args], env, logs["daemon1"])

            def sensor_runs(statuses=None):
                """The landing sensor's runs for landing files (run key ``landing:...``; its Silver
                catch-up runs, ``silver:...``, may follow when a tick sees Bronze ahead of Silver)."""
                return [r for r in instance.get_runs(filters=RunsFilter(job_name="ingest", statuses=statuses or []))
                        if r.tags.get("dagster/sensor_name") == "landing_sensor" and r.tags.get("dagster/run_key", "").startswith("landing:")]

            queued = _wait_for(lambda: sensor_runs([DagsterRunStatus.QUEUED]), deadline, "the landing sensor's queued ingest run", [logs["daemon1"]])
            _wait_for(lambda: _healthy("daemon", env), deadline, "the daemon's liveness check", [logs["daemon1"]])
            # The tick that queued the run is over (its cursor written) before the daemon dies.
            _wait_for(lambda: _sensor_ticks(postgres, "SUCCESS"), deadline, "the landing sensor's successful tick", [logs["daemon1"]])
            ticks_before = _sensor_ticks(postgres)
            _kill(daemon, signal.SIGKILL)
            assert [r.run_id for r in sensor_runs()] == [queued[0].run_id]
            assert instance.get_run_by_id(queued[0].run_id).status == DagsterRunStatus.QUEUED

            # The production queue limits again, and a new daemon.
            (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(instance_config(queue_open=True)))
            daemon = _start([str(BIN / "dagster-daemon"), "run", *workspace_args], env, logs["daemon2"])
            web = _start([str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(web_port), *workspace_args], env, logs["web"])

            def failed():
                bad = instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]))
                assert not bad, f"a run failed: {[r.run_id for r in bad]}\n" + logs["daemon2"].read_text(errors="replace")[-3000:]

            watched = [logs["daemon2"], logs["code"]]
            _wait_for(lambda: failed() or instance.get_run_by_id(queued[0].run_id).status == DagsterRunStatus.SUCCESS, deadline,
                      "the queued ingest run to succeed under the new daemon", watched)
            publish = _wait_for(lambda: failed() or instance.get_runs(filters=RunsFilter(job_name="publish", statuses=[DagsterRunStatus.SUCCESS])),
                                deadline, "the gold sensor's publish run", watched)
            store = resources_for(Settings(home=home))["store"].get_store()
            _wait_for(lambda: failed() or (store.info(DAILY_SALES).row_count > 0 and not instance.get_runs(filters=RunsFilter(statuses=ACTIVE))),
                      deadline, "the queue to drain", watched)
            # Past at least one more landing-sensor tick under the new daemon (30 s apart).
            _wait_for(lambda: _sensor_ticks(postgres) > ticks_before, deadline, "a landing sensor tick of the new daemon", watched)
            failed()

            # The run queued before the kill is the one that ran; the files were not requested twice.
            assert [r.run_id for r in sensor_runs()] == [queued[0].run_id], [r.tags.get("dagster/run_key") for r in sensor_runs()]
            assert_matches(store, expected_state(home / "landing"))

            # Runs and event logs are in PostgreSQL.
            run_ids = {queued[0].run_id, publish[0].run_id}
            with contextlib.closing(postgres.connect("dagster")) as conn, conn.cursor() as cur:
                cur.execute("SELECT run_id, status FROM runs")
                stored = dict(cur.fetchall())
                cur.execute("SELECT run_id, count(*) FROM event_logs WHERE dagster_event_type = %s GROUP BY run_id", (DagsterEventType.RUN_SUCCESS.value,))
                successes = dict(cur.fetchall())
            assert all(stored.get(r) == "SUCCESS" for r in run_ids), stored
            assert all(successes.get(r) == 1 for r in run_ids), successes
            # Step output went to S3 (S3ComputeLogManager), under the configured prefix.
            keys = aws.keys(f"s3://{logs_bucket}/{LOGS_PREFIX}")
            assert any(queued[0].run_id in k for k in keys), keys[:20]

            # The webserver serves the same instance, through the same workspace.
            runs = _wait_for(lambda: _graphql_runs(web_port), deadline, "the webserver's GraphQL API", [logs["web"]])
            assert {(r["runId"], r["status"]) for r in runs} >= {(run_id, "SUCCESS") for run_id in run_ids}
            assert _healthy("webserver", env, web_port) and _healthy("daemon", env)
        finally:
            instance.dispose()
            for proc in (daemon, web, code):  # each, whatever the others do
                with contextlib.suppress(OSError, subprocess.SubprocessError):
                    _kill(proc)


def _sensor_ticks(postgres, status: str | None = None) -> int:
    """Ticks of the landing sensor in the instance's database (ticks live in `job_ticks`)."""
    with contextlib.closing(postgres.connect("dagster")) as conn, conn.cursor() as cur:
        query = "SELECT count(*) FROM job_ticks WHERE tick_body LIKE %s" + (" AND status = %s" if status else "")
        cur.execute(query, ("%landing_sensor%", status) if status else ("%landing_sensor%",))
        return cur.fetchone()[0]
