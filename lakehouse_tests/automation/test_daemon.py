"""The real daemon and webserver: files land, the sensors' runs succeed, the UI's API shows them;
a run left STARTED by a killed process does not keep the sensors' runs queued.

Bounded: the daemon and webserver are stopped after at most DEADLINE seconds; all traffic is to
127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from lakehouse.contracts.tables import DAILY_SALES, ORDERS
from lakehouse.environment import resources_for
from lakehouse.settings import Settings
from lakehouse.sources.sample import land_sample
from lakehouse_tests.compare import assert_matches
from lakehouse_tests.reference import expected_state

DEADLINE = 300
BIN = Path(sys.executable).parent
PROJECT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(args, env=env, cwd=PROJECT, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _wait_for(predicate, deadline: float, what: str, logs: list[Path]):
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(2)
    tails = "\n".join(f"--- {p.name}\n" + p.read_text()[-3000:] for p in logs if p.exists())
    pytest.fail(f"timed out waiting for {what}\n{tails}")


@pytest.mark.slow
def test_sensors_under_the_daemon_keep_the_tables_up_to_date(tmp_path):
    home, dagster_home = tmp_path / "lakehouse", tmp_path / "daemon_home"
    dagster_home.mkdir()
    shutil.copy(PROJECT / "lakehouse" / "dagster_instance.yaml", dagster_home / "dagster.yaml")
    env = {**os.environ, "LAKEHOUSE_HOME": str(home), "DAGSTER_HOME": str(dagster_home)}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    land_sample(home / "landing", seed=5, days=2, orders_per_day=10)
    deadline = time.monotonic() + DEADLINE
    daemon_log, web_log = tmp_path / "daemon.log", tmp_path / "webserver.log"
    # The storage is created before two processes open it: Dagster's SQLite migrations race otherwise.
    instance = DagsterInstance.from_config(str(dagster_home))
    daemon = _start([str(BIN / "dagster-daemon"), "run", "-m", "lakehouse.definitions"], env, daemon_log)
    web = None
    try:

        def succeeded(job: str):
            return instance.get_runs(filters=RunsFilter(job_name=job, statuses=[DagsterRunStatus.SUCCESS]))

        def failed():
            bad = instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.FAILURE]))
            assert not bad, f"a run failed: {[r.run_id for r in bad]}\n" + daemon_log.read_text()[-3000:]

        ingest = _wait_for(lambda: failed() or succeeded("ingest"), deadline, "the landing sensor's ingest run", [daemon_log])
        assert ingest[0].tags.get("dagster/sensor_name") == "landing_sensor"
        publish = _wait_for(lambda: failed() or succeeded("publish"), deadline, "the gold sensor's publish run", [daemon_log])
        assert publish[0].tags.get("dagster/sensor_name") == "gold_sensor"
        store = resources_for(Settings(home=home))["store"].get_store()
        _wait_for(lambda: store.info(DAILY_SALES).row_count > 0 and not instance.get_runs(
            filters=RunsFilter(statuses=[DagsterRunStatus.QUEUED, DagsterRunStatus.STARTED, DagsterRunStatus.STARTING])),
            deadline, "the queue to drain", [daemon_log])
        assert_matches(store, expected_state(home / "landing"))
        assert store.info(ORDERS).summary["dagster.run-id"] in {r.run_id for r in succeeded("ingest")}

        # The webserver serves the same instance: its GraphQL API lists the sensors' runs.
        port = _free_port()
        web = _start([str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-m", "lakehouse.definitions"], env, web_log)
        query = json.dumps({"query": "{ runsOrError { ... on Runs { results { runId jobName status } } } }"}).encode()

        def runs_from_api():
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=query, headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=5) as response:
                    return json.load(response)["data"]["runsOrError"]["results"]
            except OSError:
                return None

        runs = _wait_for(runs_from_api, deadline, "the webserver's GraphQL API", [web_log])
        assert {(r["jobName"], r["status"]) for r in runs} >= {("ingest", "SUCCESS"), ("publish", "SUCCESS")}
        instance.dispose()
    finally:
        _stop(daemon)
        if web is not None:
            _stop(web)


@pytest.mark.slow
def test_a_run_left_started_by_a_killed_process_does_not_block_the_ingest_queue(tmp_path):
    """The dead run holds the only ingest slot (dagster.yaml); the landing sensor reaps it
    (lakehouse.automation.runs.fail_dead_runs), so the run it requests is dequeued and succeeds."""
    from lakehouse_tests.automation.test_runs import kill_a_started_run

    home, dagster_home = tmp_path / "lakehouse", tmp_path / "daemon_home"
    dagster_home.mkdir()
    shutil.copy(PROJECT / "lakehouse" / "dagster_instance.yaml", dagster_home / "dagster.yaml")
    env = {**os.environ, "LAKEHOUSE_HOME": str(home), "DAGSTER_HOME": str(dagster_home)}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    DagsterInstance.from_config(str(dagster_home)).dispose()  # storage created before two processes open it
    dead = kill_a_started_run(dagster_home)
    land_sample(home / "landing", seed=5, days=1, orders_per_day=10)
    deadline = time.monotonic() + DEADLINE
    daemon_log = tmp_path / "daemon.log"
    daemon = _start([str(BIN / "dagster-daemon"), "run", "-m", "lakehouse.definitions"], env, daemon_log)
    try:
        with DagsterInstance.from_config(str(dagster_home)) as instance:
            assert instance.get_run_by_id(dead).tags.get("lakehouse/pipeline") == "ingest"

            def ingested():
                bad = [r.run_id for r in instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.FAILURE])) if r.run_id != dead]
                assert not bad, f"a run failed: {bad}\n" + daemon_log.read_text()[-3000:]
                return instance.get_runs(filters=RunsFilter(job_name="ingest", statuses=[DagsterRunStatus.SUCCESS]))

            ingest = _wait_for(ingested, deadline, "the landing sensor's ingest run past the dead run", [daemon_log])
            assert ingest[0].tags.get("dagster/sensor_name") == "landing_sensor"
            assert instance.get_run_by_id(dead).status == DagsterRunStatus.FAILURE
    finally:
        _stop(daemon)
